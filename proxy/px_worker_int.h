/*
 * Private to px_worker.c, px_worker_box.c and px_worker_stats.c: the
 * messages between threads, the mailboxes, and the worker structures.
 */
#ifndef PX_WORKER_INT_H
#define PX_WORKER_INT_H

#include "proxy/px_client_int.h"
#include "proxy/px_worker.h"

#include <event2/event.h>
#include <pthread.h>
#include <sys/socket.h>

/* To the main thread: RELAY, SHADOW_FREE, READY; to a worker: the rest. */
enum { PX_MSG_RELAY, PX_MSG_SHADOW_FREE, PX_MSG_READY, PX_MSG_ANSWER, PX_MSG_NODES, PX_MSG_DRAIN, PX_MSG_STOP,
       PX_MSG_ADOPT, /* to any thread: a connection another thread accepted */
       PX_MSG_PAUSE, /* to a worker: park until px_workers_resume (a reload swaps the live keys) */
       PX_MSG_SNAP /* to a worker: publish a snapshot now (px_workers_sync) */ };

typedef struct px_msg {
    struct px_msg *next;
    int kind;
    px_worker *w;
    px_req *rq;            /* RELAY, ANSWER: the worker's request */
    px_client *shadow;     /* RELAY, SHADOW_FREE: allocated by the worker, set up and freed by main */
    kc_frame *frame;       /* RELAY: the request frame (a reference) */
    kc_req_hdr hdr;        /* RELAY: its header (strings into frame) */
    size_t body_off;
    struct evbuffer *resp; /* ANSWER: the framed response */
    int no_response;       /* ANSWER: answered without a response (acks=0) */
    char *text;            /* RELAY: the principal (NULL: none); ANSWER: why the connection closes */
    char zone[64];         /* RELAY */
    char peer[INET6_ADDRSTRLEN + 8];
    px_node *nodes;        /* NODES: one block, as px_vcluster.c builds it */
    int nnodes;
    int draining;          /* DRAIN */
    evutil_socket_t fd;    /* ADOPT: the accepted socket (closed if the message is dropped) */
    struct sockaddr_storage ss;
    int salen;
} px_msg;

/* A mutex-protected FIFO whose owner's loop wakes on an eventfd. */
typedef struct px_mbox {
    pthread_mutex_t mu;
    px_msg *head, *tail;
    int efd;
    struct event *ev;
    int closed; /* the owner is gone: posts fail */
} px_mbox;

struct px_worker {
    int index;            /* 1..n-1 (0 is the main thread) */
    px_proxy px;          /* this thread's proxy */
    px_proxy *main;
    px_workers *set;
    pthread_t thread;
    int started;          /* its thread runs */
    int joined;           /* its thread ran and ended (it tore its loop's objects down) */
    px_mbox box;
    struct event *tick;   /* snapshot, and the upgrade drain */
    mc_xz xz;
    int ready;            /* main side: its READY arrived */
    pthread_mutex_t snap_mu; /* guards the snapshot below */
    px_metrics snap;
    mc_xz snap_xz;
    mc_conn_stats snap_us;
    int snap_nconn, snap_nreq;
};

struct px_workers {
    int n;                /* threads beside the main thread */
    uint64_t conns;       /* client connections of all threads (atomic): limits.max_connections */
    px_worker **w;
    px_mbox box;          /* the main thread's */
    mc_config mcfg;
    void (*announce)(px_proxy *px);
    int nready;
    int announced;
    unsigned rr;          /* connections accepted, for the round robin (atomic) */
    px_config **retired;  /* configs a reload replaced, kept until exit (workers may read them) */
    int nretired;
    pthread_mutex_t park_mu; /* a reload's pause: */
    pthread_cond_t park_cv;
    int paused;           /* the main thread holds the workers */
    int parked;           /* workers waiting */
    int snapped;          /* workers that answered px_workers_sync's SNAP (under park_mu) */
};

/* ---- px_worker_box.c: mailboxes, relayed requests, shadow connections ---- */
void px_msg_free(px_msg *m);
/* 0, or -1 (errno). */
int px_mbox_init(px_mbox *mb, struct event_base *base, event_callback_fn cb, void *arg);
/* Queue m for the owner; 0, or -1 when the owner is gone (m not taken). */
int px_mbox_post(px_mbox *mb, px_msg *m);
/* Everything queued, oldest first; close: refuse further posts. */
px_msg *px_mbox_take(px_mbox *mb, int close);
/* The owner's last act: refuse further posts, drop what is queued. */
void px_mbox_close(px_mbox *mb);
void px_mbox_destroy(px_mbox *mb);
/* Worker side: an ANSWER for one of its relayed requests. */
void px_worker_answer(px_msg *m);
/* Main side: run a RELAY on its shadow; on failure m becomes the ANSWER
 * (kind PX_MSG_ANSWER) to send back. */
void px_main_relay(px_proxy *px, px_msg *m);
void px_main_shadow_free(px_client *sh);

/* ---- px_worker_stats.c ---- */
/* Publish the worker's metrics and drain counts (its thread). */
void px_worker_snapshot(px_worker *w);

/* ---- px_worker.c ---- */
/* The set a px belongs to (main: its own), or NULL with workers: 1. */
px_workers *px_set_of(px_proxy *px);

#endif
