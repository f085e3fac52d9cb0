/*
 * labelcache: to be written (issue 12). See labelcache.h.
 */
#include "routing/labelcache.h"
