/*
 * ow_format: the WAL object format (version 1), its builder and its decoder.
 * docs/OBJWAL.md describes the layout byte by byte; in short:
 *
 *   header   "KZOW", version, header length, object size, creation time,
 *            writer's proxy id and zone, CRC32C of the header
 *   chunks   record data, grouped by destination, no gaps
 *   index    count, then per chunk: destination, topic, partition, offset,
 *            length, CRC32C
 *   trailer  32 bytes: index offset, length and CRC32C, chunk count, header
 *            length, CRC32C of the trailer, "WOZK"
 *
 * Every byte of a well-formed object is covered by a CRC32C or a fixed value,
 * so any single corrupted byte is detected; the header carries the object's
 * size, so a truncated object is told apart from a corrupt one.
 *
 * All integers are big-endian. Every length and count read from an object is
 * checked against the bytes actually present and the OW_MAX_* limits before
 * it is used.
 */
#ifndef OW_FORMAT_H
#define OW_FORMAT_H

#include "codec/kc_buf.h"
#include "objwal/ow_types.h"

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define OW_FORMAT_VERSION 1
#define OW_HEADER_MAGIC "KZOW"
#define OW_TRAILER_MAGIC "WOZK"
#define OW_TRAILER_SIZE 32
#define OW_HEADER_MIN 36            /* fixed fields with empty proxy id and zone */
#define OW_MAX_NAME 255             /* proxy id, zone, destination, topic */
#define OW_MAX_CHUNKS 65536         /* chunks in one object */
#define OW_MAX_OBJECT (1ULL << 32)  /* bytes in one object */
#define OW_INDEX_ENTRY_MIN 24       /* an index entry with empty names */

/* ---- decoding ---- */

/* The fixed trailer, decoded. */
typedef struct ow_trailer {
    uint64_t index_off;   /* where the index starts */
    uint32_t index_len;   /* index bytes */
    uint32_t index_crc;   /* CRC32C of the index */
    uint32_t nchunks;     /* entries in the index */
    uint32_t header_len;  /* header bytes (the first chunk starts here) */
} ow_trailer;

/* One index entry; names point into the decoded bytes (not copied). */
typedef struct ow_index_entry {
    kc_str dest;
    kc_str topic;
    int32_t partition;
    ow_range range;
} ow_index_entry;

/* A decoded object: header fields and index. Strings point into the bytes
 * given to ow_obj_parse; entries is heap memory freed by ow_obj_view_clear. */
typedef struct ow_obj_view {
    uint16_t version;
    uint64_t object_size;
    int64_t created_ms;
    kc_str proxy_id;
    kc_str zone;
    ow_trailer trailer;
    ow_index_entry *entries; /* nentries, in object order (grouped by destination) */
    uint32_t nentries;
} ow_obj_view;

/*
 * Decode the 32-byte trailer at p (exactly OW_TRAILER_SIZE bytes).
 * object_size is the size of the whole object, or 0 when unknown (the
 * offsets are then checked only against each other).
 * Returns OW_OK, or OW_ECORRUPT with a sentence in errstr.
 */
int ow_trailer_decode(const uint8_t *p, size_t len, uint64_t object_size, ow_trailer *t,
                      char *errstr, size_t errstr_size);

/*
 * Decode an index of t->nchunks entries from p/len (the index bytes named by
 * the trailer), check its CRC32C and that the chunks tile the data area
 * [t->header_len, t->index_off) with no gap and no overlap.
 * On OW_OK *entries is a heap array of t->nchunks entries (caller frees with
 * free()); names point into p. Returns OW_OK, OW_ECORRUPT or OW_ENOMEM.
 */
int ow_index_decode(const uint8_t *p, size_t len, const ow_trailer *t, ow_index_entry **entries,
                    char *errstr, size_t errstr_size);

/*
 * Decode a whole object held in p/len: header, trailer, index, and (when
 * verify_chunks is set) the CRC32C of every chunk.
 * Returns OW_OK (fill v; release with ow_obj_view_clear), OW_ETRUNCATED when
 * the bytes are fewer than the header says, OW_ECORRUPT for anything else
 * wrong, OW_ENOMEM. errstr gets a sentence naming the offset.
 */
int ow_obj_parse(const uint8_t *p, size_t len, int verify_chunks, ow_obj_view *v, char *errstr,
                 size_t errstr_size);
void ow_obj_view_clear(ow_obj_view *v);

/*
 * Check one range read back from an object: got_len bytes at p were asked
 * for as r. Returns OW_OK, OW_ETRUNCATED (fewer bytes) or OW_ECORRUPT (CRC).
 */
int ow_range_verify(const ow_range *r, const uint8_t *p, size_t got_len, char *errstr,
                    size_t errstr_size);
/* The same when the range's CRC32C was computed already (as its bytes came). */
int ow_range_check(const ow_range *r, size_t got_len, uint32_t crc, char *errstr,
                   size_t errstr_size);

/* ---- building ---- */

typedef struct ow_obj_builder ow_obj_builder;

/* Start an object for proxy_id/zone (copied; at most OW_MAX_NAME bytes each).
 * NULL on allocation failure or names too long. */
ow_obj_builder *ow_obj_builder_new(const char *proxy_id, const char *zone, int64_t created_ms);
void ow_obj_builder_free(ow_obj_builder *b);

/*
 * Add a chunk for dest/topic/partition (names copied). The bytes are copied
 * (add) or moved out of eb without copying (add_evbuffer: eb is drained on
 * success and left untouched on failure). *chunk gets the chunk's index in
 * the finished object's chunk list (append order). add_evbuffer takes the
 * chunk's CRC32C from *crc when the caller has it (the router derives it
 * from the record batches' own CRCs), and reads the bytes for it when crc
 * is NULL.
 * Returns OW_OK, OW_EINVAL (name too long, empty chunk), OW_ETOOBIG (object
 * would pass OW_MAX_CHUNKS or OW_MAX_OBJECT), OW_ENOMEM.
 */
int ow_obj_builder_add(ow_obj_builder *b, const char *dest, const char *topic, int32_t partition,
                       const void *p, size_t len, uint32_t *chunk);
int ow_obj_builder_add_evbuffer(ow_obj_builder *b, const char *dest, const char *topic,
                                int32_t partition, struct evbuffer *eb, const uint32_t *crc,
                                uint32_t *chunk);

/* Chunks and data bytes added so far, and the object size if finished now. */
uint32_t ow_obj_builder_nchunks(const ow_obj_builder *b);
uint64_t ow_obj_builder_data_bytes(const ow_obj_builder *b);
uint64_t ow_obj_builder_size(const ow_obj_builder *b);

/*
 * Seal the object: returns a new evbuffer holding the whole object (caller
 * frees) and, in *chunks, a heap array of ow_obj_builder_nchunks() entries in
 * append order (index = the chunk number add returned) whose names point
 * into *names (one heap block). Caller frees *chunks and *names with free().
 * The builder is left empty and may be freed. NULL on allocation failure.
 */
struct evbuffer *ow_obj_builder_finish(ow_obj_builder *b, ow_chunk_info **chunks, char **names);

#endif
