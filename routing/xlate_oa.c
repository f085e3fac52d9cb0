/*
 * xlate_oa: to be written (issue 12). See xlate.h.
 */
#include "routing/xlate.h"
