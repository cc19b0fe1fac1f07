#include "config.h"
#include "tests/unit/kz_test.h"
/* PLACEHOLDER: golden tests being written. */
Suite *kc_metadata_suite(void) { return suite_create("kc_metadata"); }
