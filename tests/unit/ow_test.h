/*
 * Helpers shared by the objwal unit tests (tests/unit/check_objwal.c and the
 * test_ow_*.c files): temporary directories, running the event loop until a
 * condition holds (bounded by a deadline, never a sleep), and a fake object
 * store whose requests complete only when a test says so.
 */
#ifndef OW_TEST_H
#define OW_TEST_H

#include "objwal/ow_store_int.h"

#include <check.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* A fresh directory under $TMPDIR (or /tmp); ow_t_rmdir removes it. */
char *ow_t_mkdtemp(void);
void ow_t_rmdir(char *dir);

/* Run base until *flag != 0 or timeout_ms passed; returns *flag. */
int ow_t_run_until(struct event_base *base, const int *flag, int timeout_ms);

/* A local store on dir (no fsync: tests). */
ow_store *ow_t_local_store(struct event_base *base, const char *dir);

/* Fake store: requests wait in a list until ow_t_fake_complete. */
ow_store *ow_t_fake_store(struct event_base *base);
size_t ow_t_fake_npending(ow_store *st);
/* Complete the i-th pending request (in start order) with err. */
void ow_t_fake_complete(ow_store *st, size_t i, int err);
/* The body of the i-th pending PUT. */
struct evbuffer *ow_t_fake_body(ow_store *st, size_t i);

/* Build a small object of n chunks across dests; returns its bytes
 * (malloc'd) and length. */
uint8_t *ow_t_small_object(size_t *len);

Suite *ow_format_suite(void);
Suite *ow_sigv4_suite(void);
Suite *ow_store_suite(void);
Suite *ow_reader_suite(void);
Suite *ow_writer_suite(void);

#endif
