/*
 * ow_types: the data model of objwal, types only (no functions but the error
 * names). Read this file to see what a WAL object holds and what the
 * writer, the reader, the store and the garbage collector exchange.
 *
 * Ownership, for every struct below that a callback receives: the struct and
 * everything it points to belong to objwal and live until the callback
 * returns. Copy what you keep.
 */
#ifndef OW_TYPES_H
#define OW_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Results of objwal calls and callbacks: 0 is success, the rest name a class
 * of failure (also the label of the errors counter in /metrics). */
enum ow_err {
    OW_OK = 0,
    OW_EAGAIN,     /* writer over its memory cap: wait for the room callback */
    OW_EINVAL,     /* bad argument or configuration */
    OW_ENOMEM,     /* allocation failed */
    OW_ETOOBIG,    /* a chunk larger than the writer can ever hold */
    OW_ECORRUPT,   /* bytes failed a CRC32C or format check */
    OW_ETRUNCATED, /* object or range shorter than its index says */
    OW_ENOTFOUND,  /* no such key */
    OW_EEXISTS,    /* conditional PUT: the key is already there */
    OW_EAUTH,      /* 401/403: credentials or signature rejected */
    OW_ECLIENT,    /* another 4xx: the request is wrong, retrying won't help */
    OW_ESERVER,    /* 5xx (500, 503 SlowDown...) and retries ran out */
    OW_ETIMEOUT,   /* the operation's deadline passed */
    OW_EIO,        /* local I/O or transport failure */
    OW_ECANCELED,  /* the request was canceled */
    OW_ERR__COUNT
};

/* Short stable name of an ow_err ("corrupt", "timeout"...), "unknown" else. */
const char *ow_err_name(int err);

/* Where one chunk lies in an object: the RPC carries these so the reader in
 * the leader's zone can fetch and verify exactly its bytes. */
typedef struct ow_range {
    uint64_t off;    /* byte offset in the object */
    uint32_t len;    /* chunk length in bytes */
    uint32_t crc32c; /* CRC32C (Castagnoli) of the chunk's bytes */
} ow_range;

/* One chunk of a sealed object, as the writer reports it. */
typedef struct ow_chunk_info {
    const char *dest;  /* destination (e.g. the peer proxy group of a zone) */
    const char *topic; /* Kafka topic */
    int32_t partition; /* Kafka partition */
    ow_range range;    /* where its bytes are and their CRC */
} ow_chunk_info;

/* The writer's receipt for an accepted chunk: which object (seal order) and
 * which chunk of it. The sealed callback's chunks[] is indexed by .chunk. */
typedef struct ow_ticket {
    uint64_t seq;   /* object sequence number, from 1, in seal order */
    uint32_t chunk; /* index of the chunk in that object's chunks[] */
} ow_ticket;

/* One object as a store lists it. */
typedef struct ow_list_entry {
    const char *key;      /* object key */
    uint64_t size;        /* bytes */
    int64_t mtime_ms;     /* last modified, ms since the epoch (UTC) */
} ow_list_entry;

/* Outcome of one object-store request, handed to its callback. */
typedef struct ow_result {
    int err;                      /* OW_OK or an ow_err */
    const char *errmsg;           /* a sentence naming op, key and cause; "" when ok */
    int http_status;              /* last HTTP status (S3), 0 for the local store */
    unsigned attempts;            /* attempts made (1 without retries) */
    struct evbuffer *body;        /* GET: the bytes read; the callback may drain
                                   * or move them, objwal frees the buffer after */
    struct kc_frame *frame;       /* GET, may be NULL: a frame whose data[0, len) are
                                   * exactly body's bytes (body holds them by
                                   * reference); kc_frame_keep() it to keep them
                                   * past the callback without a copy */
    uint64_t object_size;         /* GET: the whole object's size when known, else 0 */
    const ow_list_entry *entries; /* LIST: this page of keys, in key order */
    size_t nentries;              /* LIST: entries in this page */
    const char *next_token;       /* LIST: token for the next page, NULL on the last */
} ow_result;

#endif
