/*
 * rstats: to be written (issue 12). See rstats.h.
 */
#include "routing/rstats.h"
