/*
 * xlate_ao: to be written (issue 12). See xlate.h.
 */
#include "routing/xlate.h"
