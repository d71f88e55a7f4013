//! The file operations every layer that writes to disk relies on: atomic, durable writes,
//! and for a layer's own files, reads and writes that stay inside its directory.
//!
//! A file is written to a temporary name beside its final one, synced, renamed into
//! place, and its directory synced, so readers see the old file or the new one, never a
//! part, and the new one survives a crash once the write returns. Temporary names
//! start with `.tmp-` and carry the writer's host and process id,
//! `.tmp-{host}.{pid}-{n}-{name}`, so a later start can tell a crashed writer's
//! leftovers from a live writer's work, and never judges by a pid from another machine
//! sharing the directory (see [`host_id`]).
//!
//! A layer directory may be shared with, or handed over by, someone else, who could put
//! a symlink in it: `leak-1.0.0.crate` pointing at a file of the user running the
//! overlay, or `index/se` pointing at a directory elsewhere. [`open_beneath`] and
//! [`write_beneath`] therefore walk a path below the layer's root one component at a
//! time, each opened relative to the directory before it with `O_NOFOLLOW`: no symlink
//! below the root is followed, even one swapped in while the walk runs. The root itself
//! is the user's choice and may be a symlink. The last component must be a regular
//! file: a FIFO would block a reader forever.
//!
//! What a write creates is as open as [`Access`] says: the user's umask decides for a
//! layer that may be shared with a team, the owner alone for the run directory's
//! layers and cache, whatever the umask.

use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Makes temporary names unique among the threads of this process; the process id
/// makes them unique among processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The prefix of every temporary file name.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Who may read the files and directories a write creates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Access {
    /// As the user's umask allows: a layer directory may be shared with a team.
    Umask,
    /// The owner only (0600 files, 0700 directories), whatever the umask: what lives
    /// in the run directory is this run's alone.
    OwnerOnly,
}

impl Access {
    /// The mode a new file is created with, before the umask.
    pub(crate) fn file_mode(self) -> u32 {
        match self {
            Access::Umask => 0o666,
            Access::OwnerOnly => 0o600,
        }
    }

    /// The mode a new directory is created with, before the umask.
    pub(crate) fn dir_mode(self) -> u32 {
        match self {
            Access::Umask => 0o777,
            Access::OwnerOnly => 0o700,
        }
    }

    /// Creates `dir` and its missing parents with this access.
    pub(crate) fn create_dir_all(self, dir: &Path) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(self.dir_mode())
            .create(dir)
    }
}

/// Overrides [`host_id`]: a test hook, so tests can run overlays that look like
/// different machines sharing one layer directory. Not for production use.
pub(crate) const HOST_ID_VAR: &str = "CARGO_OVERLAY_REGISTRY_HOST_ID";

/// How many hex digits of a host identity a temporary name carries.
const HOST_ID_LEN: usize = 12;

/// The identity of the set of processes this one can see by pid: the running kernel
/// (its boot id, new at every boot and different on every machine; the host name when
/// that is unreadable) and this process's pid namespace (containers on one machine
/// see each other's pids under other numbers, or not at all). It is the first 12 hex
/// digits of a SHA-256 of both: short, and safe in a file name. A pid in a temporary
/// file's name is only checked by a process with the same identity.
///
/// [`HOST_ID_VAR`] replaces it, for tests; a value that is not 1 to 32 ASCII letters
/// and digits is ignored.
pub(crate) fn host_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        if let Some(id) = std::env::var(HOST_ID_VAR).ok().filter(|id| is_host_id(id)) {
            return id.to_ascii_lowercase();
        }
        let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("host {}", host_name()));
        let pid_namespace = fs::read_link("/proc/self/ns/pid")
            .map(|link| link.to_string_lossy().into_owned())
            .unwrap_or_default();
        let digest = crate::digest::sha256_hex(format!("{boot}\n{pid_namespace}").as_bytes());
        digest[..HOST_ID_LEN].to_string()
    })
}

/// Whether `id` can be a host identity in a temporary name.
pub(crate) fn is_host_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Who wrote a temporary file, as its name says.
#[derive(Debug, PartialEq)]
pub(crate) struct TempWriter<'a> {
    /// The writer's [`host_id`]; none in names written before there was one.
    pub(crate) host: Option<&'a str>,
    /// The writer's process id, a positive number.
    pub(crate) pid: i32,
}

/// The writer named by a temporary file name, `.tmp-{host}.{pid}-{n}-{name}` or the
/// older `.tmp-{pid}-{n}-{name}`; none for any other name.
pub(crate) fn temp_writer(file_name: &str) -> Option<TempWriter<'_>> {
    let (writer, _) = file_name.strip_prefix(TEMP_PREFIX)?.split_once('-')?;
    let (host, pid) = match writer.split_once('.') {
        Some((host, pid)) if is_host_id(host) => (Some(host), pid),
        Some(_) => return None,
        None => (None, writer),
    };
    // Digits only: `kill` with 0 or a negative pid would address process groups.
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pid = pid.parse().ok().filter(|&pid| pid > 0)?;
    Some(TempWriter { host, pid })
}

/// A fresh temporary path beside `path`: `.tmp-{host}.{pid}-{n}-{file name}`.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let dir = path.parent().expect("layer files have a directory");
    let file_name = path.file_name().expect("layer files have a name");
    dir.join(temp_name(file_name))
}

fn temp_name(file_name: &OsStr) -> String {
    format!(
        "{TEMP_PREFIX}{}.{}-{}-{}",
        host_id(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
        file_name.to_string_lossy()
    )
}

/// Writes `bytes` to `path` atomically and durably (see the module docs).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let dir = path.parent().expect("layer files have a directory");
    let file_name = path.file_name().expect("layer files have a name");
    access.create_dir_all(dir)?;
    write_in(&File::open(dir)?, file_name, bytes, access)
}

/// Writes `bytes` to `relative` below `root` atomically and durably, creating missing
/// directories on the way, without following a symlink below `root` (see the module
/// docs).
pub(crate) fn write_beneath(
    root: &Path,
    relative: &Path,
    bytes: &[u8],
    access: Access,
) -> io::Result<()> {
    let (dirs, file_name) = split_relative(relative)?;
    let dir = walk_dirs(root, &dirs, Some(access))?;
    write_in(&dir, file_name, bytes, access)
}

/// Opens `relative` below `root` for reading, without following a symlink below `root`
/// (see the module docs), with the file's metadata. A symlink on the way is an error
/// of kind `InvalidInput` that says so.
pub(crate) fn open_beneath(root: &Path, relative: &Path) -> io::Result<(File, fs::Metadata)> {
    let (dirs, file_name) = split_relative(relative)?;
    let flags = libc::O_RDONLY | libc::O_NONBLOCK;
    let fd = match resolve_beneath(root, relative, flags)? {
        Some(fd) => fd,
        None => open_at(&walk_dirs(root, &dirs, None)?, file_name, flags, 0)?,
    };
    let file = File::from(fd);
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file, which a layer does not serve",
        ));
    }
    Ok((file, metadata))
}

/// Opens (creating with `create`) a lock file at `relative` below `root`, its
/// directories created on the way, without following a symlink below `root`.
pub(crate) fn open_lock_beneath(root: &Path, relative: &Path, access: Access) -> io::Result<File> {
    let (dirs, file_name) = split_relative(relative)?;
    let dir = walk_dirs(root, &dirs, Some(access))?;
    open_at(
        &dir,
        file_name,
        libc::O_WRONLY | libc::O_CREAT,
        access.file_mode(),
    )
    .map(File::from)
}

/// Syncs the directory holding `path`, making a rename into it durable.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path.parent().expect("layer files have a directory");
    File::open(dir)?.sync_all()
}

/// The core of every atomic write: a temporary file in `dir`, renamed over `file_name`.
/// Everything is relative to the open directory, so the file lands where `dir` is,
/// whatever happens to the path that led there.
fn write_in(dir: &File, file_name: &OsStr, bytes: &[u8], access: Access) -> io::Result<()> {
    let temp = temp_name(file_name);
    let temp = OsStr::new(&temp);
    let result = (|| {
        let mut file = File::from(open_at(
            dir,
            temp,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            access.file_mode(),
        )?);
        file.write_all(bytes)?;
        file.sync_all()?;
        let (from, to) = (c_name(temp)?, c_name(file_name)?);
        // SAFETY: both names are NUL-terminated and live across the call; the
        // descriptors are open.
        let renamed =
            unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) };
        if renamed != 0 {
            return Err(io::Error::last_os_error());
        }
        dir.sync_all()
    })();
    if result.is_err()
        && let Ok(name) = c_name(temp)
    {
        // SAFETY: as above.
        unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
    }
    result
}

/// `relative`'s directories and file name; only plain names are allowed.
fn split_relative(relative: &Path) -> io::Result<(Vec<&OsStr>, &OsStr)> {
    let mut names = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => names.push(name),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a plain relative path", relative.display()),
                ));
            }
        }
    }
    let file_name = names.pop().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "an empty path names no file")
    })?;
    Ok((names, file_name))
}

/// The directory `root/dirs...`, each one below `root` opened without following a
/// symlink, and created first (with `create`'s access) when `create` is given.
fn walk_dirs(root: &Path, dirs: &[&OsStr], create: Option<Access>) -> io::Result<File> {
    let mut dir = File::open(root)?;
    for name in dirs {
        if let Some(access) = create {
            let c = c_name(name)?;
            // SAFETY: `c` is NUL-terminated and lives across the call; `dir` is open.
            if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), access.dir_mode()) } != 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(e);
                }
            }
        }
        dir = File::from(open_at(&dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?);
    }
    Ok(dir)
}

/// Opens `relative` below `root` in one call where the kernel can: Linux 5.6 and later
/// resolve a whole path beneath a directory refusing every symlink on the way, which is
/// what [`walk_dirs`] does a component at a time, in a fifth of the system calls (an
/// index GET is little else). `None` when the caller must walk: the kernel lacks the
/// call (older, or a sandbox filters it; remembered), or the path holds a symlink,
/// which the walk then names in its error.
#[cfg(target_os = "linux")]
fn resolve_beneath(
    root: &Path,
    relative: &Path,
    flags: libc::c_int,
) -> io::Result<Option<OwnedFd>> {
    use std::sync::atomic::AtomicBool;
    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let root = File::open(root)?;
    let path = c_name(relative.as_os_str())?;
    // SAFETY: `open_how` is plain data; all zeroes is its "nothing asked" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: `path` is NUL-terminated and `how` initialised, both live across the
    // call, whose size argument is `how`'s; `root` is open.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd >= 0 {
        let fd = libc::c_int::try_from(fd).expect("file descriptors fit a c_int");
        // SAFETY: `fd` was just opened and is owned by nothing else.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM | libc::EINVAL | libc::E2BIG) => {
            UNSUPPORTED.store(true, Ordering::Relaxed);
            Ok(None)
        }
        Some(libc::ELOOP | libc::EXDEV) => Ok(None),
        _ => Err(e),
    }
}

/// Elsewhere the walk does it all.
#[cfg(not(target_os = "linux"))]
fn resolve_beneath(_: &Path, _: &Path, _: libc::c_int) -> io::Result<Option<OwnedFd>> {
    Ok(None)
}

/// `openat` with `O_NOFOLLOW | O_CLOEXEC` added. A symlink becomes an error that says
/// so, naming it.
fn open_at(
    dir: &File,
    name: &OsStr,
    flags: libc::c_int,
    mode: libc::c_uint,
) -> io::Result<OwnedFd> {
    let c = c_name(name)?;
    // SAFETY: `c` is NUL-terminated and lives across the call; `dir` is open.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        // ELOOP for a symlink as the last component, ENOTDIR for one where a directory
        // must be (O_DIRECTORY with O_NOFOLLOW).
        let is_link = matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
            && is_symlink_at(dir, &c);
        if is_link {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symbolic link, which a layer does not follow",
                    name.to_string_lossy()
                ),
            ));
        }
        return Err(e);
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn is_symlink_at(dir: &File, name: &CString) -> bool {
    stat_at(dir, name).is_ok_and(|stat| stat.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// The modification time of `name` in `dir` (a symlink's own, not its target's),
/// looked up relative to `dir`: one system call, where a path is resolved from the
/// root again. Search checks tens of thousands of index directories this way.
pub(crate) fn modified_at(dir: &File, name: &OsStr) -> io::Result<SystemTime> {
    let stat = stat_at(dir, &c_name(name)?)?;
    let nanos = u32::try_from(stat.st_mtime_nsec).unwrap_or(0);
    Ok(match u64::try_from(stat.st_mtime) {
        Ok(secs) => UNIX_EPOCH + Duration::new(secs, nanos),
        Err(_) => {
            UNIX_EPOCH - Duration::new(stat.st_mtime.unsigned_abs(), 0) + Duration::new(0, nanos)
        }
    })
}

/// `fstatat` of `name` in `dir`, not following a symlink.
fn stat_at(dir: &File, name: &CString) -> io::Result<libc::stat> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated, `stat` is large enough for the result.
    let done = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            stat.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat filled `stat` when it returned 0.
    Ok(unsafe { stat.assume_init() })
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a file name holds a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Scratch;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn read(root: &Path, relative: &str) -> io::Result<String> {
        let mut text = String::new();
        open_beneath(root, Path::new(relative))?
            .0
            .read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn modified_at_reads_the_entry_itself() {
        let work = Scratch::new("modified-at");
        fs::write(work.join("file"), b"x").unwrap();
        symlink(work.join("file"), work.join("link")).unwrap();
        let dir = File::open(&*work).unwrap();
        for name in ["file", "link"] {
            let expected = fs::symlink_metadata(work.join(name))
                .unwrap()
                .modified()
                .unwrap();
            assert_eq!(
                modified_at(&dir, OsStr::new(name)).unwrap(),
                expected,
                "{name}"
            );
        }
        let missing = modified_at(&dir, OsStr::new("missing")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn symlinks_below_the_root_are_never_followed() {
        let work = Scratch::new("links");
        let outside = work.join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), "secret\n").unwrap();
        let root = work.join("root");
        fs::create_dir_all(&root).unwrap();
        write_beneath(
            &root,
            Path::new("index/ab/cd/abcd"),
            b"line\n",
            Access::Umask,
        )
        .unwrap();
        assert_eq!(read(&root, "index/ab/cd/abcd").unwrap(), "line\n");

        // A file that is a link, and a directory that is a link.
        symlink(outside.join("secret"), root.join("leak-1.0.0.crate")).unwrap();
        symlink(&outside, root.join("index/se")).unwrap();
        for path in ["leak-1.0.0.crate", "index/se/secret"] {
            let err = read(&root, path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path}: {err}");
            assert!(err.to_string().contains("symbolic link"), "{err}");
        }
        // Writes refuse the linked directory, and create nothing outside.
        let err =
            write_beneath(&root, Path::new("index/se/rd/serde"), b"x", Access::Umask).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!outside.join("rd").exists());
        // A write replaces a link at its own name, never writing through it.
        write_beneath(&root, Path::new("leak-1.0.0.crate"), b"new", Access::Umask).unwrap();
        assert_eq!(
            fs::read_to_string(outside.join("secret")).unwrap(),
            "secret\n"
        );
        assert_eq!(read(&root, "leak-1.0.0.crate").unwrap(), "new");
        // The root itself may be a link.
        let linked_root = work.join("linked-root");
        symlink(&root, &linked_root).unwrap();
        assert_eq!(read(&linked_root, "index/ab/cd/abcd").unwrap(), "line\n");
        // Absent files are NotFound, as callers expect.
        assert_eq!(
            read(&root, "index/zz/zz/zzzz").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn a_fifo_is_not_read() {
        let root = Scratch::new("fifo");
        let path = CString::new(root.join("pipe-1.0.0.crate").as_os_str().as_bytes()).unwrap();
        // SAFETY: `path` is NUL-terminated.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let err = open_beneath(&root, Path::new("pipe-1.0.0.crate")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }

    #[test]
    fn temp_names_carry_the_writer_host_and_pid() {
        let name = temp_name(OsStr::new("serde-1.0.0.crate"));
        let writer = temp_writer(&name).unwrap();
        assert_eq!(writer.host, Some(host_id()));
        assert_eq!(writer.pid as u32, std::process::id());
        assert!(name.ends_with("-serde-1.0.0.crate"), "{name}");
        assert!(is_host_id(host_id()), "{}", host_id());

        let writer = |name| temp_writer(name).map(|w| (w.host, w.pid));
        assert_eq!(
            writer(".tmp-0a1b2c3d4e5f.123-4-serde"),
            Some((Some("0a1b2c3d4e5f"), 123))
        );
        // The name before there was a host.
        assert_eq!(writer(".tmp-123-4-serde-1.0.0.crate"), Some((None, 123)));
        for bad in [
            ".tmp-0-4-x",
            ".tmp--5-4-x",
            ".tmp-+5-4-x",
            ".tmp-99999999999-4-x",
            "tmp-5-4-x",
            ".tmp-abc.-4-x",
            ".tmp-.5-4-x",
            ".tmp-ab_c.5-4-x",
            ".tmp-abc.0-4-x",
            ".tmp-abc.x5-4-x",
            ".tmp-a.b.5-4-x",
        ] {
            assert_eq!(writer(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_plain_relative_paths() {
        let root = Scratch::new("plain");
        for bad in ["../x", "/etc/passwd", "a/../b", ""] {
            assert!(open_beneath(&root, Path::new(bad)).is_err(), "{bad}");
        }
    }
}
