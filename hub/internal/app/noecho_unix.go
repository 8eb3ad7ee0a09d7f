//go:build linux || darwin || freebsd || netbsd || openbsd

package app

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// noEcho turns off the terminal's echo on f; an error when f is not a terminal.
func noEcho(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return nil, errors.New("stdin is not a terminal")
	}
	quiet := *t
	quiet.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &quiet); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, ioctlSetTermios, t) }, nil
}
