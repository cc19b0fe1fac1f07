/*
 * Private to router/: the router's state shared by rt_out.c and rt_in.c.
 */
#ifndef RT_INT_H
#define RT_INT_H

#include "router/rt_router.h"

/* One part of a batch waiting for its object to be stored. */
typedef struct rt_ent {
    rt_batch *b;
    int part;
    uint32_t chunk;
} rt_ent;

/* The parts of one WAL object, in append order. */
typedef struct rt_obj {
    uint64_t seq;
    int n, cap;
    rt_ent *ents;
    struct rt_obj *next;
} rt_obj;

/* A destination zone: its writer and the objects it has not reported yet. */
typedef struct rt_dest {
    char *zone;
    ow_writer *w;
    rt_obj *head, *tail;
    struct rt_router *rt;
    int waiting; /* a room callback is registered */
    struct event *idle; /* seal_idle_ms timer, re-armed on every append */
} rt_dest;

typedef struct rt_in_req rt_in_req;

/* Appends that came on one peer connection, in arrival order. */
typedef struct rt_stream {
    const void *id;
    rt_in_req *head, *tail;
    struct rt_stream *next;
} rt_stream;

struct rt_router {
    struct event_base *base;
    mc_cluster *mc;
    mc_peers *peers;
    rt_config cfg;
    char *zone, *key_prefix, proxy_id[16];
    rt_stats st;
    int ndests;
    rt_dest *dests[64];
    rt_batch *wait_head, *wait_tail; /* batches waiting for writer memory, in order */
    rt_stream *streams;
    int closing;
};

/* Kafka errors used on the WAL path. */
#define RT_ERR_MESSAGE_TOO_LARGE 10

void rt_in_free_all(rt_router *rt);

#endif
