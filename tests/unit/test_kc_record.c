#include "config.h"
#include "tests/unit/kz_test.h"
/* PLACEHOLDER */
Suite *kc_record_suite(void) { return suite_create("kc_record"); }
