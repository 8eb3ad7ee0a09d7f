//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package app

import (
	"errors"
	"os"
)

func noEcho(*os.File) (func(), error) {
	return nil, errors.New("no password prompt on this system")
}
