/*
 * px_config_check: the file-level checks of kzproxy --check-config (see
 * px_config_check.c): every certificate, key, CA, credentials, password and
 * token file the config names loads as the daemon would load it.
 */
#ifndef PX_CONFIG_CHECK_H
#define PX_CONFIG_CHECK_H

#include "proxy/px_config.h"

#include <stddef.h>

/* 0, or -1 with err naming the key and what is wrong. */
int px_config_check(const px_config *cfg, char *err, size_t n);

#endif
