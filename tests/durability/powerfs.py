#!/usr/bin/python3
"""powerfs: an in-memory FUSE file system that forgets, at a power cut, everything that was
not made durable, for the power-loss tests (powerloss.py).

The model is the strict POSIX one (what a disk with a volatile write cache may do):
- a file's bytes and size become durable only at fsync/fdatasync of that file;
- a name (create, mkdir, rename, unlink, link, symlink) becomes durable only at fsync of the
  directory that holds it (a rename needs both directories for both halves);
- a directory's entries are snapshotted at its fsync; a file that is durable in a directory
  that is itself not durable in its parent is lost with that directory.

Usage: powerfs.py MOUNTPOINT STATE_DIR [LOAD_DIR]
(environment: POWERFS_TRACE=1 logs name operations and syncs; POWERFS_KILL_MKDIR=PREFIX
crashes the process that makes the first directory under PREFIX.)
Mounts an in-memory tree at MOUNTPOINT (filled from LOAD_DIR, all of it durable, when
given) and runs in the foreground. Unmount it (umount MOUNTPOINT) after every process using it
is dead: the daemon then writes STATE_DIR/durable (what survives a power cut at that moment)
and STATE_DIR/current (what a clean shutdown leaves), each a plain directory tree, and
STATE_DIR/stats.json (operation counts and how much the cut discarded). The next mount loads
one of them. The SQLite -shm file (shared memory, never synced) is not special: it loses its
contents like any unsynced file, which SQLite's recovery expects.
"""

import errno
import json
import os
import stat
import sys
import threading
import time

import fusepy

TRACE = os.environ.get("POWERFS_TRACE") == "1"  # log name operations and syncs to stderr


# A crash at a chosen moment: POWERFS_KILL_MKDIR=PREFIX SIGKILLs the process that makes
# the first directory whose path starts with PREFIX, right after the mkdir (once).
KILL_MKDIR = os.environ.get("POWERFS_KILL_MKDIR")


def trace(*args):
    if TRACE:
        print(*args, file=sys.stderr, flush=True)


class Node:
    _next_ino = 2

    def __init__(self, mode, uid=0, gid=0):
        self.mode = mode
        self.uid, self.gid = uid, gid
        self.ino = Node._next_ino
        Node._next_ino += 1
        now = time.time()
        self.atime = self.mtime = self.ctime = now
        self.nlink = 1
        if stat.S_ISDIR(mode):
            self.entries = {}   # name -> Node, as seen now
            self.durable = {}   # name -> Node, as of the last fsync of this directory
            self.nlink = 2
        elif stat.S_ISLNK(mode):
            self.target = b""
        else:
            self.data = bytearray()
            self.durable = b""  # bytes as of the last fsync (b"" before the first)

    @property
    def is_dir(self):
        return stat.S_ISDIR(self.mode)


class PowerFS(fusepy.Operations):
    use_ns = True
    flag_nullpath_ok = 1  # operations on an unlinked open file come with a NULL path

    def __init__(self, state_dir, load_dir=None):
        self.mutex = threading.RLock()
        self.state_dir = state_dir
        self.root = Node(stat.S_IFDIR | 0o755)
        self.fds = {}
        self.next_fd = 1
        self.stats = {"fsync": 0, "fsyncdir": 0, "write": 0, "bytes_written": 0}
        if load_dir:
            st = os.stat(load_dir)  # PostgreSQL insists on its data directory's owner and mode
            self.root.mode, self.root.uid, self.root.gid = st.st_mode, st.st_uid, st.st_gid
            self._load(self.root, load_dir)

    # ---- loading and saving plain directory trees ----

    def _load(self, dnode, path):
        for name in sorted(os.listdir(path)):
            p = os.path.join(path, name)
            st = os.lstat(p)
            n = Node(st.st_mode, st.st_uid, st.st_gid)
            n.mtime = st.st_mtime
            if stat.S_ISDIR(st.st_mode):
                self._load(n, p)
            elif stat.S_ISLNK(st.st_mode):
                n.target = os.fsencode(os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    n.data = bytearray(f.read())
                n.durable = bytes(n.data)
            else:
                continue
            dnode.entries[name] = n
            dnode.durable[name] = n

    def _save(self, dnode, path, durable, seen):
        os.makedirs(path, exist_ok=True)
        os.chmod(path, stat.S_IMODE(dnode.mode))
        os.chown(path, dnode.uid, dnode.gid)
        entries = dnode.durable if durable else dnode.entries
        for name, n in entries.items():
            p = os.path.join(path, name)
            if n.is_dir:
                if n.ino in seen:  # a directory renamed into its own durable subtree
                    continue
                self._save(n, p, durable, seen | {n.ino})
            elif stat.S_ISLNK(n.mode):
                os.symlink(os.fsdecode(n.target), p)
            else:
                with open(p, "wb") as f:
                    f.write(n.durable if durable else n.data)
                os.chmod(p, stat.S_IMODE(n.mode))
                os.chown(p, n.uid, n.gid)

    def _lost(self, dnode, path, out, seen):
        """What a cut discards, for the stats: names and files whose bytes differ."""
        for name, n in dnode.entries.items():
            p = path + "/" + name
            if dnode.durable.get(name) is not n:
                out["names"].append(p)
            elif n.is_dir:
                if n.ino not in seen:
                    self._lost(n, p, out, seen | {n.ino})
            elif not stat.S_ISLNK(n.mode) and bytes(n.data) != n.durable:
                out["files"].append(p)
                out["bytes"] += abs(len(n.data) - len(n.durable)) or len(n.data)

    def destroy(self, path):
        with self.mutex:
            lost = {"names": [], "files": [], "bytes": 0}
            self._lost(self.root, "", lost, frozenset())
            for which in ("durable", "current"):
                self._save(self.root, os.path.join(self.state_dir, which), which == "durable",
                           frozenset())
            with open(os.path.join(self.state_dir, "stats.json"), "w") as f:
                json.dump(dict(self.stats, lost_names=lost["names"][:200],
                               lost_name_count=len(lost["names"]),
                               lost_files=lost["files"][:200],
                               lost_file_count=len(lost["files"])), f, indent=1)

    # ---- lookups ----

    def _lookup(self, path):
        n = self.root
        for part in path.split("/"):
            if not part:
                continue
            if not n.is_dir:
                raise fusepy.FuseOSError(errno.ENOTDIR)
            n = n.entries.get(part)
            if n is None:
                raise fusepy.FuseOSError(errno.ENOENT)
        return n

    def _parent(self, path):
        head, name = path.rstrip("/").rsplit("/", 1)
        d = self._lookup(head or "/")
        if not d.is_dir:
            raise fusepy.FuseOSError(errno.ENOTDIR)
        return d, name

    def _node(self, path, fh):
        if fh:
            return self.fds[fh]
        return self._lookup(path)

    def _new_fd(self, node):
        fd = self.next_fd
        self.next_fd += 1
        self.fds[fd] = node
        return fd

    # ---- attributes ----

    def getattr(self, path, fh=None):
        with self.mutex:
            n = self._node(path, fh)
            if n.is_dir:
                size = 4096
            elif stat.S_ISLNK(n.mode):
                size = len(n.target)
            else:
                size = len(n.data)
            return {"st_mode": n.mode, "st_ino": n.ino, "st_nlink": n.nlink, "st_uid": n.uid,
                    "st_gid": n.gid, "st_size": size, "st_blocks": (size + 511) // 512,
                    "st_atime": int(n.atime * 1e9), "st_mtime": int(n.mtime * 1e9),
                    "st_ctime": int(n.ctime * 1e9)}

    def chmod(self, path, mode):
        with self.mutex:
            n = self._lookup(path)
            n.mode = (n.mode & ~0o7777) | (mode & 0o7777)

    def chown(self, path, uid, gid):
        with self.mutex:
            n = self._lookup(path)
            if uid != -1 and uid != 0xFFFFFFFF:
                n.uid = uid
            if gid != -1 and gid != 0xFFFFFFFF:
                n.gid = gid

    def utimens(self, path, times=None):
        with self.mutex:
            n = self._lookup(path)
            now = time.time()
            if times:
                n.atime, n.mtime = times[0] / 1e9, times[1] / 1e9
            else:
                n.atime = n.mtime = now

    def access(self, path, amode):
        with self.mutex:
            self._lookup(path)
        return 0

    def statfs(self, path):
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1 << 24, "f_bfree": 1 << 23,
                "f_bavail": 1 << 23, "f_files": 1 << 20, "f_ffree": 1 << 19,
                "f_namemax": 255}

    # ---- names ----

    def _add(self, path, node):
        trace("add", path)
        d, name = self._parent(path)
        if name in d.entries:
            raise fusepy.FuseOSError(errno.EEXIST)
        d.entries[name] = node
        d.mtime = time.time()
        if node.is_dir:
            d.nlink += 1
        return node

    def mkdir(self, path, mode):
        global KILL_MKDIR
        with self.mutex:
            uid, gid, pid = fusepy.fuse_get_context()
            self._add(path, Node(stat.S_IFDIR | (mode & 0o7777), uid, gid))
            if KILL_MKDIR and path.startswith(KILL_MKDIR):
                KILL_MKDIR = None
                trace("kill", pid, "after mkdir", path)
                os.kill(pid, 9)

    def create(self, path, mode, fi=None):
        with self.mutex:
            uid, gid, _ = fusepy.fuse_get_context()
            return self._new_fd(self._add(path, Node(stat.S_IFREG | (mode & 0o7777), uid,
                                                     gid)))

    def mknod(self, path, mode, dev):
        if not stat.S_ISREG(mode):
            raise fusepy.FuseOSError(errno.EPERM)
        with self.mutex:
            uid, gid, _ = fusepy.fuse_get_context()
            self._add(path, Node(mode, uid, gid))

    def symlink(self, target, source):
        with self.mutex:
            n = Node(stat.S_IFLNK | 0o777)
            n.target = os.fsencode(source)
            self._add(target, n)

    def readlink(self, path):
        with self.mutex:
            return os.fsdecode(self._lookup(path).target)

    def link(self, target, source):
        with self.mutex:
            n = self._lookup(source)
            if n.is_dir:
                raise fusepy.FuseOSError(errno.EPERM)
            self._add(target, n)
            n.nlink += 1

    def unlink(self, path):
        trace("unlink", path)
        with self.mutex:
            d, name = self._parent(path)
            n = d.entries.get(name)
            if n is None:
                raise fusepy.FuseOSError(errno.ENOENT)
            if n.is_dir:
                raise fusepy.FuseOSError(errno.EISDIR)
            del d.entries[name]
            n.nlink -= 1

    def rmdir(self, path):
        with self.mutex:
            d, name = self._parent(path)
            n = d.entries.get(name)
            if n is None:
                raise fusepy.FuseOSError(errno.ENOENT)
            if not n.is_dir:
                raise fusepy.FuseOSError(errno.ENOTDIR)
            if n.entries:
                raise fusepy.FuseOSError(errno.ENOTEMPTY)
            del d.entries[name]
            d.nlink -= 1

    def rename(self, old, new):
        trace("rename", old, new)
        with self.mutex:
            od, oname = self._parent(old)
            nd, nname = self._parent(new)
            n = od.entries.get(oname)
            if n is None:
                raise fusepy.FuseOSError(errno.ENOENT)
            victim = nd.entries.get(nname)
            if victim is n:
                return 0
            if victim is not None:
                if victim.is_dir != n.is_dir:
                    raise fusepy.FuseOSError(errno.EISDIR if victim.is_dir else errno.ENOTDIR)
                if victim.is_dir and victim.entries:
                    raise fusepy.FuseOSError(errno.ENOTEMPTY)
            del od.entries[oname]
            nd.entries[nname] = n
            if n.is_dir and od is not nd:
                od.nlink -= 1
                nd.nlink += 1
            return 0

    def readdir(self, path, fh):
        with self.mutex:
            n = self._lookup(path)
            return [".", ".."] + list(n.entries)

    def fsyncdir(self, path, datasync, fh):
        with self.mutex:
            n = self._lookup(path)
            n.durable = dict(n.entries)
            self.stats["fsyncdir"] += 1
            trace("fsyncdir", path)
            return 0

    # ---- data ----

    def open(self, path, flags):
        with self.mutex:
            n = self._lookup(path)
            if flags & os.O_TRUNC and not n.is_dir:
                del n.data[:]
            return self._new_fd(n)

    def release(self, path, fh):
        with self.mutex:
            self.fds.pop(fh, None)
            return 0

    def flush(self, path, fh):
        return 0

    def read(self, path, size, offset, fh):
        with self.mutex:
            n = self._node(path, fh)
            return bytes(n.data[offset:offset + size])

    def write(self, path, data, offset, fh):
        with self.mutex:
            n = self._node(path, fh)
            if offset > len(n.data):
                n.data.extend(b"\0" * (offset - len(n.data)))
            n.data[offset:offset + len(data)] = data
            n.mtime = time.time()
            self.stats["write"] += 1
            self.stats["bytes_written"] += len(data)
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            n = self._node(path, fh)
            if length < len(n.data):
                del n.data[length:]
            else:
                n.data.extend(b"\0" * (length - len(n.data)))
            n.mtime = time.time()

    def fsync(self, path, datasync, fh):
        with self.mutex:
            n = self._node(path, fh)
            n.durable = bytes(n.data)
            self.stats["fsync"] += 1
            trace("fsync", path, len(n.data))
            return 0


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    mnt, state = sys.argv[1], sys.argv[2]
    load = sys.argv[3] if len(sys.argv) == 4 else None
    os.makedirs(state, exist_ok=True)
    # hard_remove: an unlinked open file stays readable through its handle (no .fuse_hidden
    # files); use_ino: SQLite tells files apart by inode number; big_writes: 128 KiB writes.
    fusepy.FUSE(PowerFS(state, load), mnt, foreground=True, hard_remove=True, use_ino=True,
                big_writes=True, allow_other=True, default_permissions=True,
                fsname="powerfs")


if __name__ == "__main__":
    main()
