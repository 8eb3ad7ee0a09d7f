//go:build !windows

package capture

import (
	"io/fs"
	"syscall"
)

func fileIdent(st fs.FileInfo) ident {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return ident{Dev: uint64(s.Dev), Ino: uint64(s.Ino)}
	}
	return ident{}
}
