#include "config.h"

#include "codec/kc_msg.h"

/* PLACEHOLDER: being written; every call fails. */
int kc_metadata_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_metadata_req *out)
{ (void)version; (void)a; (void)out; return kc_rd_fail(rd, "not implemented"); }
void kc_metadata_req_encode(kc_wr *w, int16_t version, const kc_metadata_req *in)
{ (void)version; (void)in; w->err = 1; }
int kc_metadata_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_metadata_resp *out)
{ (void)version; (void)a; (void)out; return kc_rd_fail(rd, "not implemented"); }
void kc_metadata_resp_encode(kc_wr *w, int16_t version, const kc_metadata_resp *in)
{ (void)version; (void)in; w->err = 1; }
