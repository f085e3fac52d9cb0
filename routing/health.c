/*
 * health: to be written (issue 12). See health.h.
 */
#include "routing/health.h"
