/*
 * px_cut: cut-through of large Produce requests on the direct path.
 *
 * A Produce frame of at least limits.cut_through_min_bytes (64 KiB; 0: off)
 * is read into its kc_frame as before (kc_frame_rx), but as soon as its partition list is in (every field
 * up to the last partition's records length, and that batch's header), the
 * request is dispatched and placed (px_produce_cut_place). When the whole
 * request goes, unchanged, to one broker (no WAL, no refused partition, the
 * broker speaks the client's version, acks != 0), it is sent on the client's
 * own connection to that broker (px_client_conn, blocking) as a stream: the
 * header with the proxy's correlation id, then the body by reference to the
 * frame's bytes as each read lands them (mc_conn_stream_*). No other request
 * goes on that connection until the frame's last byte is written. Otherwise
 * the placed request waits for its last byte and goes on as today
 * (px_produce_send).
 *
 * Safety: the streamed frame only ever travels on a connection of its own
 * client. If the client closes mid-frame, that connection is closed
 * (mc_conn_stream_abort): the broker drops the frame cut short, and only
 * this client's own requests, whose answers can no longer be delivered,
 * fail. A client whose requests once went this way keeps sending its Produce
 * requests over its own connections (px_cut_private), so that none overtakes
 * another on a different connection; the switch happens only while none of
 * its Produce requests is in flight.
 *
 * Not on a worker thread (workers > 1 relays Produce to the main thread
 * when a WAL router exists): there every request is read whole as before.
 */
#ifndef PX_CUT_H
#define PX_CUT_H

#include "codec/kc_buf.h"

#include <stdint.h>

typedef struct px_client px_client;

/* Socket reads of such a frame pass on at most this much at a time. */
#define PX_CUT_STEP ((size_t)64 << 10)

/* px_client.c: a frame of ApiKey key starts arriving into f (cl->rx). */
void px_cut_begin(px_client *cl, int16_t key, kc_frame *f);
/* px_client.c: more of the frame arrived (cl->rx.got bytes in all; start:
 * as many when this loop turn's reads began): pass it on, then read the
 * next step (kc_frame_rx_fill's result: 1 complete, 0 wait for the socket,
 * -1 closed or failed; 0 too once the turn read KC_RX_TURN_MAX). */
int px_cut_progress(px_client *cl, size_t start);
/* px_client.c: the frame is complete (f: the reference kc_frame_rx_take
 * gave). 1 when its request was dispatched early and is now on its way (f
 * is taken); 0: dispatch it as usual. */
int px_cut_complete(px_client *cl, kc_frame *f);
/* px_client.c: the connection closes: a frame being streamed is cut off. */
void px_cut_drop(px_client *cl);
/* px_route.c: 1 when this client's Produce requests use its own broker
 * connections. */
int px_cut_private(const px_client *cl);

#endif
