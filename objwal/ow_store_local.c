/*
 * Local-directory backend. Each request runs from a deferred event on the
 * loop, so callbacks never run inside the call that queued them. The file
 * I/O itself is synchronous (local disk, bounded by the object size).
 */
#include "config.h"

#include "objwal/ow_store_int.h"

#include "codec/kc_buf.h"

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef struct ow_local {
    char *root;
    int no_fsync;
    uint64_t tmp_seq;
} ow_local;

typedef struct ow_local_req {
    ow_req base;
    struct event *ev;
} ow_local_req;

/* mkdir -p of the directory part of path (not the last component). */
static int ow_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) == -1 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static int ow_write_all(int fd, struct evbuffer *body)
{
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(body, &pos, 0, EVBUFFER_PTR_SET);
    size_t left = evbuffer_get_length(body);
    while (left > 0) {
        struct evbuffer_iovec v[16];
        int n = evbuffer_peek(body, (ev_ssize_t)left, &pos, v, 16);
        if (n <= 0)
            return -1;
        if (n > 16)
            n = 16;
        size_t batch = 0;
        for (int i = 0; i < n; i++)
            batch += v[i].iov_len;
        if (batch > left)
            batch = left;
        size_t done = 0;
        while (done < batch) {
            /* Rebuild the iovec after a partial write. */
            struct iovec iov[16];
            int k = 0;
            size_t skip = done, want = batch - done;
            for (int i = 0; i < n && want > 0; i++) {
                size_t l = v[i].iov_len;
                if (skip >= l) {
                    skip -= l;
                    continue;
                }
                iov[k].iov_base = (char *)v[i].iov_base + skip;
                iov[k].iov_len = l - skip < want ? l - skip : want;
                want -= iov[k].iov_len;
                skip = 0;
                k++;
            }
            ssize_t w = writev(fd, iov, k);
            if (w == -1) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            done += (size_t)w;
        }
        left -= batch;
        if (left > 0 && evbuffer_ptr_set(body, &pos, batch, EVBUFFER_PTR_ADD) != 0)
            return -1;
    }
    return 0;
}

/*
 * Whether key may name a file under the root; else res->err is OW_EINVAL,
 * msg says why and -1 is returned. Besides ow_key_valid's rules (no leading
 * '/', no "..", a plain character set): no empty or "." component and
 * nothing in the store's own ".tmp" directory.
 */
static int ow_local_key_check(const ow_req *req, ow_result *res, char *msg, size_t msz)
{
    const char *k = req->key;
    int bad = !ow_key_valid(k) || strncmp(k, ".tmp/", 5) == 0 || strcmp(k, ".tmp") == 0;
    for (const char *c = k; !bad && *c; c++) {
        const char *seg = c;
        while (*c && *c != '/')
            c++;
        bad = c == seg || (c - seg == 1 && seg[0] == '.');
        if (*c == '\0')
            break;
        bad |= c[1] == '\0'; /* a trailing '/': an empty last component */
    }
    if (bad || strlen(k) > PATH_MAX - 1) {
        res->err = OW_EINVAL;
        snprintf(msg, msz, "key %s: not a plain key under the store's root (refused)", k);
        return -1;
    }
    return 0;
}

/*
 * The directory that holds rel's last component, reached from the root one
 * component at a time with openat(O_NOFOLLOW | O_DIRECTORY): a symbolic link
 * anywhere on the way (planted in the tree) fails with ELOOP or ENOTDIR
 * instead of leading out of the root. create: missing directories are made
 * (mkdirat). Returns the directory's fd (the caller closes it) with *leaf
 * pointing at the last component in rel, or -1 with errno. The root itself
 * is the configured path and may be a link.
 */
static int ow_local_parent(const ow_local *lc, const char *rel, int create, const char **leaf)
{
    int dfd = open(lc->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char *c = rel;
    while (dfd != -1) {
        const char *slash = strchr(c, '/');
        if (slash == NULL) {
            *leaf = c;
            return dfd;
        }
        char comp[NAME_MAX + 1];
        size_t n = (size_t)(slash - c);
        if (n == 0 || n > NAME_MAX) {
            close(dfd);
            errno = n == 0 ? EINVAL : ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, c, n);
        comp[n] = '\0';
        int nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd == -1 && errno == ENOENT && create &&
            (mkdirat(dfd, comp, 0755) == 0 || errno == EEXIST))
            nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(dfd);
        dfd = nfd;
        errno = e;
        c = slash + 1;
    }
    return -1;
}

/* The error of a failed path operation on key: a link or non-directory on
 * the way is a refusal (OW_EINVAL), a missing one not found. */
static void ow_local_fail(ow_result *res, char *msg, size_t msz, const char *op, const char *key, int e)
{
    if (e == ELOOP || e == ENOTDIR) {
        res->err = OW_EINVAL;
        snprintf(msg, msz, "%s %s: a component of its path is a symbolic link or not a directory (refused: "
                 "keys never leave the store's root)", op, key);
    } else {
        res->err = e == ENOENT ? OW_ENOTFOUND : OW_EIO;
        snprintf(msg, msz, "%s %s: %s", op, key, e == ENOENT ? "no such key" : strerror(e));
    }
}

static void ow_local_put(ow_store *st, ow_req *req, ow_result *res, char *msg, size_t msz)
{
    ow_local *lc = st->impl;
    char tmp[64];
    const char *leaf = NULL, *tleaf = NULL;
    if (ow_local_key_check(req, res, msg, msz) != 0)
        return;
    snprintf(tmp, sizeof(tmp), ".tmp/%ld-%" PRIu64, (long)getpid(), ++lc->tmp_seq);
    st->metrics.put_requests++;
    int tdir = ow_local_parent(lc, tmp, 1, &tleaf);
    int fd = tdir == -1 ? -1
                        : openat(tdir, tleaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd == -1) {
        int e = errno;
        res->err = OW_EIO;
        snprintf(msg, msz, "PUT %s: cannot create %s/%s: %s", req->key, lc->root, tmp, strerror(e));
        if (tdir != -1)
            close(tdir);
        return;
    }
    if (ow_write_all(fd, req->body) != 0 || (!lc->no_fsync && fsync(fd) != 0)) {
        res->err = OW_EIO;
        snprintf(msg, msz, "PUT %s: writing %s/%s: %s", req->key, lc->root, tmp, strerror(errno));
        close(fd);
        unlinkat(tdir, tleaf, 0);
        close(tdir);
        return;
    }
    close(fd);
    int dfd = ow_local_parent(lc, req->key, 1, &leaf);
    if (dfd == -1) {
        int e = errno;
        ow_local_fail(res, msg, msz, "PUT", req->key, e);
        if (res->err != OW_EINVAL) {
            res->err = OW_EIO;
            snprintf(msg, msz, "PUT %s: cannot create its directory under %s: %s", req->key, lc->root,
                     strerror(e));
        }
        unlinkat(tdir, tleaf, 0);
        close(tdir);
        return;
    }
    /* linkat() fails when the key exists: the local If-None-Match. */
    if (linkat(tdir, tleaf, dfd, leaf, 0) != 0) {
        int e = errno;
        unlinkat(tdir, tleaf, 0);
        close(tdir);
        close(dfd);
        res->err = e == EEXIST ? OW_EEXISTS : OW_EIO;
        snprintf(msg, msz, "PUT %s: %s", req->key, e == EEXIST ? "the key already exists" : strerror(e));
        return;
    }
    unlinkat(tdir, tleaf, 0);
    close(tdir);
    int synced = lc->no_fsync ? 0 : fsync(dfd);
    close(dfd);
    if (synced != 0) {
        res->err = OW_EIO;
        snprintf(msg, msz, "PUT %s: fsync of its directory: %s", req->key, strerror(errno));
        return;
    }
    st->metrics.bytes_up += evbuffer_get_length(req->body);
}

/* Bytes per pread when a tap reads them as they come: well inside L2. */
#define OW_LOCAL_TAP_PIECE (128 * 1024)

static void ow_local_get(ow_store *st, ow_req *req, ow_result *res, char *msg, size_t msz)
{
    ow_local *lc = st->impl;
    const char *leaf = NULL;
    st->metrics.get_requests++;
    if (ow_local_key_check(req, res, msg, msz) != 0)
        return;
    int dfd = ow_local_parent(lc, req->key, 0, &leaf);
    int fd = dfd == -1 ? -1 : openat(dfd, leaf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int e = errno;
    if (dfd != -1)
        close(dfd);
    struct stat sb;
    if (fd != -1) {
        int st_rc = fstat(fd, &sb);
        if (st_rc != 0 || !S_ISREG(sb.st_mode)) {
            e = st_rc != 0 ? errno : EISDIR; /* not a regular file */
            close(fd);
            fd = -1;
        }
    }
    if (fd == -1) {
        ow_local_fail(res, msg, msz, "GET", req->key, e);
        return;
    }
    uint64_t size = (uint64_t)sb.st_size, from, n;
    if (req->off < 0) {
        uint64_t want = (uint64_t)(-req->off);
        from = want > size ? 0 : size - want;
        n = size - from;
    } else {
        from = (uint64_t)req->off;
        if (from >= size) {
            close(fd);
            res->err = OW_ETRUNCATED;
            snprintf(msg, msz, "GET %s: range starts at %" PRIu64 ", the object has %" PRIu64
                     " bytes", req->key, from, size);
            return;
        }
        n = size - from;
        if (req->len != 0 && req->len < n)
            n = req->len;
    }
    res->object_size = size;
    if (n > 0) {
        /* Read into a frame that the body references: a reader keeps the
         * frame instead of copying the bytes out (ow_result.frame). */
        kc_frame *f = kc_frame_new((size_t)n);
        if (f == NULL) {
            close(fd);
            res->err = OW_ENOMEM;
            snprintf(msg, msz, "GET %s: out of memory for %" PRIu64 " bytes", req->key, n);
            return;
        }
        /* With a tap, in pieces that stay in the cache until it has seen them. */
        size_t got = 0, piece = req->tap != NULL ? OW_LOCAL_TAP_PIECE : (size_t)n;
        while (got < n) {
            size_t want = (size_t)n - got < piece ? (size_t)n - got : piece;
            ssize_t r = pread(fd, f->data + got, want, (off_t)(from + got));
            if (r == -1 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            if (req->tap != NULL)
                req->tap(req->tap_arg, got, f->data + got, (size_t)r);
            got += (size_t)r;
        }
        f->len = got;
        if (got > 0 && kc_frame_add_ref(res->body, f, f->data, got) != 0) {
            kc_frame_release(f);
            close(fd);
            res->err = OW_ENOMEM;
            snprintf(msg, msz, "GET %s: out of memory", req->key);
            return;
        }
        res->frame = f;
        st->metrics.bytes_down += got;
    }
    close(fd);
}

static void ow_local_delete(ow_store *st, ow_req *req, ow_result *res, char *msg, size_t msz)
{
    ow_local *lc = st->impl;
    const char *leaf = NULL;
    st->metrics.delete_requests++;
    if (ow_local_key_check(req, res, msg, msz) != 0)
        return;
    int dfd = ow_local_parent(lc, req->key, 0, &leaf);
    int rc = dfd == -1 ? -1 : unlinkat(dfd, leaf, 0);
    int e = errno;
    if (dfd != -1)
        close(dfd);
    if (rc != 0 && e != ENOENT) /* already gone: done */
        ow_local_fail(res, msg, msz, "DELETE", req->key, e);
}

typedef struct ow_keylist {
    ow_list_entry *e;
    size_t n, cap;
    int err;
} ow_keylist;

/* List the directory dfd (rel under the root; dfd is consumed), descending
 * into real directories only (openat with O_NOFOLLOW, fstatat without
 * following): a link in the tree is neither listed nor followed. */
static void ow_walk(int dfd, const char *rel, const char *prefix, ow_keylist *kl)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL && !kl->err) {
        if (de->d_name[0] == '.')
            continue; /* ".", "..", and the .tmp directory */
        char key[PATH_MAX];
        if (snprintf(key, sizeof(key), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >= (int)sizeof(key))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        size_t pl = strlen(prefix), kl2 = strlen(key);
        /* Descend only where the prefix can still match. */
        size_t cmp = pl < kl2 ? pl : kl2;
        if (strncmp(key, prefix, cmp) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd != -1)
                ow_walk(cfd, key, prefix, kl);
        } else if (S_ISREG(sb.st_mode) && kl2 >= pl) {
            if (kl->n == kl->cap) {
                size_t cap = kl->cap ? kl->cap * 2 : 64;
                ow_list_entry *ne = realloc(kl->e, cap * sizeof(*ne));
                if (ne == NULL) {
                    kl->err = 1;
                    break;
                }
                kl->e = ne;
                kl->cap = cap;
            }
            ow_list_entry *e = &kl->e[kl->n];
            e->key = strdup(key);
            if (e->key == NULL) {
                kl->err = 1;
                break;
            }
            e->size = (uint64_t)sb.st_size;
            e->mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
            kl->n++;
        }
    }
    closedir(d);
}

static int ow_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const ow_list_entry *)a)->key, ((const ow_list_entry *)b)->key);
}

static void ow_local_list(ow_store *st, ow_req *req, ow_result *res, char *msg, size_t msz,
                          ow_keylist *kl)
{
    ow_local *lc = st->impl;
    st->metrics.list_requests++;
    int dfd = open(lc->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd != -1)
        ow_walk(dfd, "", req->key, kl);
    if (kl->err) {
        res->err = OW_ENOMEM;
        snprintf(msg, msz, "LIST %s: out of memory", req->key);
        return;
    }
    if (kl->n > 0)
        qsort(kl->e, kl->n, sizeof(*kl->e), ow_entry_cmp);
    size_t start = 0;
    if (req->token != NULL)
        while (start < kl->n && strcmp(kl->e[start].key, req->token) <= 0)
            start++;
    size_t n = kl->n - start;
    if (n > req->max_keys) {
        n = req->max_keys;
        res->next_token = kl->e[start + n - 1].key;
    }
    res->entries = n > 0 ? kl->e + start : NULL;
    res->nentries = n;
}

static void ow_local_run(evutil_socket_t fd, short what, void *arg)
{
    ow_local_req *lr = arg;
    ow_req *req = &lr->base;
    ow_store *st = req->st;
    event_free(lr->ev);
    lr->ev = NULL;
    char msg[PATH_MAX + 256] = "";
    ow_result res = {.err = OW_OK, .attempts = 1};
    ow_keylist kl = {0};
    if (req->op == OW_OP_GET && (res.body = evbuffer_new()) == NULL) {
        res.err = OW_ENOMEM;
        snprintf(msg, sizeof(msg), "GET %s: out of memory", req->key);
    } else if (req->op == OW_OP_PUT) {
        ow_local_put(st, req, &res, msg, sizeof(msg));
    } else if (req->op == OW_OP_GET) {
        ow_local_get(st, req, &res, msg, sizeof(msg));
    } else if (req->op == OW_OP_DELETE) {
        ow_local_delete(st, req, &res, msg, sizeof(msg));
    } else {
        ow_local_list(st, req, &res, msg, sizeof(msg), &kl);
    }
    struct evbuffer *body = res.body;
    kc_frame *frame = res.frame;
    res.errmsg = msg;
    ow_req_complete(req, &res);
    if (body != NULL)
        evbuffer_free(body);
    kc_frame_release(frame);
    for (size_t i = 0; i < kl.n; i++)
        free((char *)kl.e[i].key);
    free(kl.e);
}

static int ow_local_start(ow_store *st, ow_req *req)
{
    ow_local_req *lr = (ow_local_req *)req;
    lr->ev = event_new(st->base, -1, 0, ow_local_run, lr);
    if (lr->ev == NULL)
        return OW_ENOMEM;
    event_active(lr->ev, 0, 0);
    return OW_OK;
}

static void ow_local_cancel(ow_store *st, ow_req *req)
{
    ow_local_req *lr = (ow_local_req *)req;
    if (lr->ev != NULL) {
        event_free(lr->ev);
        lr->ev = NULL;
    }
}

static void ow_local_destroy(ow_store *st)
{
    ow_local *lc = st->impl;
    free(lc->root);
    free(lc);
}

static const ow_store_ops ow_local_ops = {
    .req_size = sizeof(ow_local_req),
    .start = ow_local_start,
    .cancel = ow_local_cancel,
    .destroy = ow_local_destroy,
};

int ow_local_init(ow_store *st, const ow_local_config *cfg, char *errstr, size_t errstr_size)
{
    if (cfg->root == NULL || cfg->root[0] == '\0') {
        snprintf(errstr, errstr_size, "local object store: no root directory configured");
        return OW_EINVAL;
    }
    if (strlen(cfg->root) > PATH_MAX - 1200) {
        snprintf(errstr, errstr_size, "local object store: root path too long");
        return OW_EINVAL;
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/.tmp/x", cfg->root);
    if (ow_mkdirs(tmp) != 0) {
        snprintf(errstr, errstr_size, "local object store: cannot create %s/.tmp: %s", cfg->root,
                 strerror(errno));
        return OW_EIO;
    }
    ow_local *lc = calloc(1, sizeof(*lc));
    if (lc == NULL || (lc->root = strdup(cfg->root)) == NULL) {
        free(lc);
        snprintf(errstr, errstr_size, "local object store: out of memory");
        return OW_ENOMEM;
    }
    size_t n = strlen(lc->root);
    while (n > 1 && lc->root[n - 1] == '/')
        lc->root[--n] = '\0';
    lc->no_fsync = cfg->no_fsync;
    st->impl = lc;
    st->ops = &ow_local_ops;
    snprintf(st->desc, sizeof(st->desc), "local:%s", lc->root);
    return OW_OK;
}
