/*
 * classify: to be written (issue 12). See classify.h.
 */
#include "gate/pipeline/classify.h"
