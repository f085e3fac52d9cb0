/*
 * chatrole: the token counts of the role names that every chat message carries ("system",
 * "user", "assistant", "tool", "developer"), remembered per thread and encoding.
 *
 * A call of the encoder costs a few hundred instructions however short its string; a
 * request's count hands it one role a message. These counts are found by tok_count once per
 * thread and encoding, then read back. Like the encoder's piece cache, the memo only remembers
 * results, which are a function of the string and the encoding: it never changes a count,
 * which is why it may be per-thread state. Four encodings are remembered per thread; a fifth
 * is counted each time.
 */
#ifndef TOK_CHATROLE_H
#define TOK_CHATROLE_H

#include <stdint.h>

#include "tokenizer/tok.h"

/*
 * When s is a role name: its tokens in e into *n, and 1. When it is not: 0, *n untouched
 * (count it with tok_count). -1 when the encoder fails (out of memory).
 */
int tok_role_count(const tok_enc *e, const char *s, uint64_t *n);

#endif
