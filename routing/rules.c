/*
 * rules: to be written (issue 12). See route.h.
 */
#include "routing/route.h"
