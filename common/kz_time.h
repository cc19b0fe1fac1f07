/* kz_time: the monotonic clock in milliseconds, for timeouts, rates and ages. */
#ifndef KZ_TIME_H
#define KZ_TIME_H

#include <stdint.h>

/* CLOCK_MONOTONIC in ms: never goes back; not a wall-clock time. */
int64_t kz_mono_ms(void);

#endif
