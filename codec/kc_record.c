#include "config.h"

#include "codec/kc_msg.h"

/* PLACEHOLDER */
int kc_record_batch_decode(kc_rd *rd, kc_record_batch *out) { (void)out; return kc_rd_fail(rd, "not implemented"); }
int kc_record_batches_validate(const kc_bytes *records, int allow_partial, kc_rd *rd, size_t *partial_tail)
{ (void)records; (void)allow_partial; (void)partial_tail; return kc_rd_fail(rd, "not implemented"); }
