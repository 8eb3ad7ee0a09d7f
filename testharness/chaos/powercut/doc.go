// Package powercut simulates a power cut under a real process: a FUSE file system (LazyFS-style,
// built on github.com/hanwen/go-fuse/v2) that keeps, for every file, the content that was
// durable as of its last fsync/fdatasync apart from the writes still pending, and for every
// directory the entries that were durable as of its last directory fsync apart from the
// creates, renames and unlinks still pending. [Mount.PowerCut] stops the disk (every later
// operation fails with EIO), lets the caller SIGKILL its processes, throws away what was not
// synced, unmounts (so the kernel's page cache of the old mount is gone with it) and mounts the
// durable state again. Between the stop and the SIGKILL, reads still see the current view (the
// page cache a real machine had at the instant of the cut); only mutations fail.
//
// # Why it is faithful
//
//   - The process under test is the real binary doing real syscalls: pwrite, ftruncate,
//     fdatasync, rename, fsync of a directory, and reads through a shared mmap (bbolt). The
//     kernel's FUSE client turns them into requests to this package; nothing in the product
//     knows or is changed.
//   - Files are opened without direct_io, so the kernel page cache sits between the process
//     and the "disk" exactly as on a local file system: bbolt's mmap reads are served from the
//     page cache, which the kernel keeps coherent with write(2). Unsynced data lives in that
//     cache and in the pending overlay here; the unmount after the cut destroys the mount's
//     superblock and its whole page cache, and the new mount reads only durable content. So no
//     cached page can hand back a write that was never synced.
//   - The model is POSIX's, and stricter than ext4's ordered mode: only fsync/fdatasync makes a
//     file's data and length durable, and only an fsync of the directory makes a create, a
//     rename or an unlink durable (a file fsynced under a name that was never made durable
//     vanishes). A disk that lies about flushes is a bug of the disk, not of the program, and
//     is available only as the deliberately broken [Options.IgnoreFsync].
//   - [Reorder] mode does not even keep the unsynced writes in order: each 512-byte sector
//     written since the last sync survives the cut or not, independently, at random (a drive
//     that wrote part of its cache, in any order, before the power went). A program that is
//     correct under POSIX survives both modes.
//
// # Limits
//
//   - A sector that survives does so whole: a write torn inside a 512-byte sector is not
//     modelled, nor are misdirected or corrupted writes (the corruption tests cover damage).
//   - fdatasync and fsync are the same here (both make data and length durable); the
//     metadata fdatasync may skip (times, mode) is not modelled as lost.
//   - Directory entries revert per directory: a rename between two directories of which only
//     the target was synced leaves the name in both after a cut (the agent renames within one
//     directory only). Hard links, symlinks, xattrs and file locks forwarded to the server are
//     not supported (the kernel emulates flock locally, which bbolt uses).
//   - Everything lives in the test process's memory, and the process under test must run on
//     this machine as root (FUSE mount with mount(2)); /dev/fuse is required.
package powercut
