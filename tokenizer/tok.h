/*
 * tok: the gate's byte-pair-encoding tokenizer, token for token the same as OpenAI's tiktoken
 * for cl100k_base, o200k_base, p50k_base and r50k_base.
 *
 * The rank tables are compiled into the binary (the .tkr files of tokenizer/data, made by gen-ranks.mjs
 * from the npm tiktoken package); an encoding's lookup table is built the first time it is
 * asked for, once per process, and is read-only afterwards, so one tok_enc is shared by every
 * thread without locks.
 *
 * Text is UTF-8. Ill-formed input is never an error: each ill-formed sequence is encoded as
 * U+FFFD (its maximal subpart, as Rust and Python decode), which is what tiktoken sees when a
 * JavaScript or Python caller passes a string holding a lone surrogate.
 */
#ifndef TOK_TOK_H
#define TOK_TOK_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_enc tok_enc;

/* Special-token strings (<|endoftext|> and the rest) become their special ids only when the
 * caller allows them; otherwise they are ordinary text, as in user content. */
#define TOK_ALLOW_SPECIAL 1u

/* A growable list of token ids; zeroed is empty. Free with tok_ids_free. */
typedef struct tok_ids {
    uint32_t *v;
    size_t n;
    size_t cap;
} tok_ids;

/*
 * The encoding called name ("cl100k_base", "o200k_base", "p50k_base", "r50k_base"), its tables
 * built on first use. Returns NULL when the name is unknown or the tables cannot be allocated.
 */
const tok_enc *tok_encoding(const char *name);

/* Its name, and one past its largest token id (special tokens included). */
const char *tok_name(const tok_enc *e);
uint32_t tok_vocab_size(const tok_enc *e);

/* The names of the encodings, NULL-terminated. */
extern const char *const tok_encoding_names[];

/*
 * Appends the token ids of n bytes of text at s to out. Returns 0, or -1 when memory runs out,
 * in which case out holds a prefix of the ids (still to be freed by the caller).
 */
int tok_encode(const tok_enc *e, const char *s, size_t n, unsigned flags, tok_ids *out);

/* Counts the tokens of n bytes of text at s into *count. Returns 0, or -1 when memory runs
 * out (only pieces of text longer than a few hundred bytes need memory). */
int tok_count(const tok_enc *e, const char *s, size_t n, unsigned flags, uint64_t *count);

/*
 * The bytes of token id, and their length in *len; NULL when id is no token of e. A token's
 * bytes need not be whole UTF-8 characters: decode a whole sequence before treating it as text.
 */
const char *tok_token_bytes(const tok_enc *e, uint32_t id, size_t *len);

/*
 * Builds the tables that merging long pieces uses (the linear-time merge: 2 to 4 MB, 40-160 ms
 * per encoding on the test machine), which are otherwise built the first time a long piece of e
 * is merged, making that encode wait. Optional, thread-safe, idempotent; the gate calls it from
 * a thread of its own once it listens.
 */
void tok_prepare_long(const tok_enc *e);

/*
 * Makes this thread's piece caches (16 MiB for pieces of up to 24 bytes, 6 MiB for longer ones,
 * zeroed) now, so that the thread's first encode does not pay for them. Optional: an encode makes it when it is missing. Returns 0, or -1 when it cannot be
 * had (the encoder then works without it).
 */
int tok_thread_prepare(void);

/*
 * Empties this thread's piece cache, which remembers the ids of recent pieces (a per-thread
 * memo that never changes a result). Benchmarks call it to measure text seen for the first time.
 */
void tok_cache_clear(void);

/*
 * Whether the n bytes of JSON text at s hold a \u0000 escape. cJSON, which decodes the gate's
 * JSON, ends a string at U+0000, so text after one is not seen by the counter: callers mark
 * such counts as estimates, or refuse the input.
 */
int tok_json_has_nul_escape(const char *s, size_t n);

/*
 * The encoder's paths, which give the same ids: TOK_PATH_SCALAR finds pieces one at a time with
 * the scanners of pretok.c; TOK_PATH_SSE2 and TOK_PATH_AVX2 run the block encoder (tokblock.c),
 * which classifies 64 bytes at a time with SSE2 or AVX2 and batches the pieces' lookups. The
 * default is the fastest the CPU has, unless the environment variable TOKENGATE_TOK_PATH names
 * one (scalar, sse2, avx2) when the first encoding is built.
 */
typedef enum tok_path {
    TOK_PATH_AUTO = 0,
    TOK_PATH_SCALAR,
    TOK_PATH_SSE2,
    TOK_PATH_AVX2,
} tok_path;

/* Uses path p (AUTO: the default) for every later encode in this process. Returns 0, or -1 when
 * the CPU lacks it, leaving the path unchanged. Call it before other threads encode. */
int tok_set_path(tok_path p);

/* The path in use (never AUTO), and a path's name ("scalar", "sse2", "avx2"). */
tok_path tok_get_path(void);
const char *tok_path_name(tok_path p);

/* The path named name into *p (AUTO for "auto"). Returns 0, or -1 for an unknown name. */
int tok_path_parse(const char *name, tok_path *p);

/* Frees what ids holds and leaves it empty. */
void tok_ids_free(tok_ids *ids);

#endif
