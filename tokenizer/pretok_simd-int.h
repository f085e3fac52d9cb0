/*
 * pretok_simd-int: the block pre-tokenizer's window classifier and piece start masks, static
 * inline so that both pretok_simd.c and the block encoder (tokblock-int.h) compile them into
 * their loops. Not for use outside tokenizer/.
 *
 * A window of 64 bytes that begins at a piece's start is classified into one 64-bit mask per
 * class (classify_sse2, classify_avx2); starts_cl100k() and starts_o200k() then compute from
 * the class masks, for all offsets at once, where the window's pieces start: a mask with bit 0
 * and every start below window_limit(), the offset past which the window cannot tell (a
 * character no mask can say, a run that may go on past the end). The pieces are the spans between
 * consecutive bits; the highest bit is where the next window begins. A mask of bit 0 alone
 * decides nothing: the piece from the window's start is the scalar scanner's (pretok_next).
 *
 * Byte classes, from classify_sse2 / classify_avx2 (ASCII only; every byte >= 0x80 is in hi
 * and in no other mask):
 *   let  A-Z a-z (exactly the ASCII \p{L}); up A-Z and lo a-z of them (o200k's case classes)
 *   dig  0-9 (the ASCII \p{N})     ws   \t \n \v \f \r and space (\s)     nl   \r \n
 *   oth  every other ASCII byte ([^\s\p{L}\p{N}]), the apostrophe among them
 *   apos the apostrophe            sp   the space (0x20)      sl   the slash (o200k only)
 * window_decide_hi() then classifies the non-ASCII characters it can: every byte of a letter
 * goes into let (and up), of any other character into oth, and cont marks the bytes that
 * continue a character; hi keeps only what no mask can say, where window_limit() stops.
 */
#ifndef TOK_PRETOK_SIMD_INT_H
#define TOK_PRETOK_SIMD_INT_H

#include <emmintrin.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/pretok_simd.h"
#include "tokenizer/uclass.h"

#define WIN 64

typedef struct win {
    uint64_t let, up, dig, ws, nl, oth, hi, apos;
    uint64_t sp;   /* the space itself (0x20): ` ?` in the punctuation alternative */
    uint64_t cont; /* bytes 0x80-0xbf of the characters window_decide_hi() classified */
    uint64_t both; /* o200k: the letters (and marks) of both case classes (none in ASCII) */
    uint64_t pad;  /* the bytes past the text's end (window_pad) */
    uint64_t sl;   /* the slashes (o200k's punctuation tails), when classify was asked for them */
} win;

/* Stores a window's masks, the other class being what no class and no non-ASCII byte holds. */
static inline void win_set(win *w, uint64_t let, uint64_t up, uint64_t dig, uint64_t ws,
                           uint64_t nl, uint64_t hi, uint64_t apos, uint64_t spc, uint64_t sl)
{
    w->sl = sl;
    w->let = let;
    w->up = up;
    w->dig = dig;
    w->ws = ws;
    w->nl = nl;
    w->hi = hi;
    w->apos = apos;
    w->sp = spc;
    w->cont = 0;
    w->both = 0;
    w->pad = 0;
    w->oth = ~(let | dig | ws | hi);
}

/*
 * The masks of the 64 bytes at p, sixteen at a time, and the slashes too when slash is set (o200k
 * reads them; a constant where this is inlined). Each mask is gathered in a local and stored
 * once: stores through w, which a byte pointer may alias, would be reloaded at every step.
 */
static inline void classify_sse2(const uint8_t *p, win *w, int slash)
{
    const __m128i a = _mm_set1_epi8('a'), z25 = _mm_set1_epi8(25), x20 = _mm_set1_epi8(0x20);
    const __m128i d0 = _mm_set1_epi8('0'), z9 = _mm_set1_epi8(9), tab = _mm_set1_epi8(9);
    const __m128i z4 = _mm_set1_epi8(4), sp = _mm_set1_epi8(' '), lf = _mm_set1_epi8('\n');
    const __m128i cr = _mm_set1_epi8('\r'), ap = _mm_set1_epi8('\''), ua = _mm_set1_epi8('A');
    const __m128i sla = _mm_set1_epi8('/');
    uint64_t let = 0, up = 0, dig = 0, ws = 0, nl = 0, hi = 0, apos = 0, spc = 0, sl = 0;

    for (int q = 0; q < WIN / 16; q++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * q));
        /* x <= bound as unsigned bytes: min(x, bound) == x */
        __m128i t = _mm_sub_epi8(_mm_or_si128(v, x20), a), tu = _mm_sub_epi8(v, ua);
        __m128i u = _mm_sub_epi8(v, d0), c = _mm_sub_epi8(v, tab);
        __m128i wsv = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(c, z4), c), _mm_cmpeq_epi8(v, sp));
        int sh = 16 * q;

        let |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(t, z25), t)) << sh;
        up |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(tu, z25), tu)) << sh;
        dig |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(u, z9), u)) << sh;
        ws |= (uint64_t)(uint16_t)_mm_movemask_epi8(wsv) << sh;
        nl |= (uint64_t)(uint16_t)_mm_movemask_epi8(
                  _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)))
              << sh;
        hi |= (uint64_t)(uint16_t)_mm_movemask_epi8(v) << sh;
        apos |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, ap)) << sh;
        spc |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, sp)) << sh;
        if (slash)
            sl |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, sla)) << sh;
    }
    win_set(w, let, up, dig, ws, nl, hi, apos, spc, sl);
}

#ifdef __AVX2__
/* The same masks, 32 bytes at a time with AVX2: only in code compiled for AVX2, only called
 * where the CPU has it (tok_path). */
static inline void classify_avx2(const uint8_t *p, win *w, int slash)
{
    const __m256i a = _mm256_set1_epi8('a'), z25 = _mm256_set1_epi8(25);
    const __m256i x20 = _mm256_set1_epi8(0x20), d0 = _mm256_set1_epi8('0');
    const __m256i z9 = _mm256_set1_epi8(9), tab = _mm256_set1_epi8(9), z4 = _mm256_set1_epi8(4);
    const __m256i sp = _mm256_set1_epi8(' '), lf = _mm256_set1_epi8('\n');
    const __m256i cr = _mm256_set1_epi8('\r'), ap = _mm256_set1_epi8('\''), ua = _mm256_set1_epi8('A');
    const __m256i sla = _mm256_set1_epi8('/');
    uint64_t let = 0, up = 0, dig = 0, ws = 0, nl = 0, hi = 0, apos = 0, spc = 0, sl = 0;

    for (int q = 0; q < WIN / 32; q++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * q));
        __m256i t = _mm256_sub_epi8(_mm256_or_si256(v, x20), a), tu = _mm256_sub_epi8(v, ua);
        __m256i u = _mm256_sub_epi8(v, d0), c = _mm256_sub_epi8(v, tab);
        __m256i wsv = _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_min_epu8(c, z4), c),
                                      _mm256_cmpeq_epi8(v, sp));
        int sh = 32 * q;

        let |= (uint64_t)(uint32_t)_mm256_movemask_epi8(
                   _mm256_cmpeq_epi8(_mm256_min_epu8(t, z25), t))
               << sh;
        up |= (uint64_t)(uint32_t)_mm256_movemask_epi8(
                  _mm256_cmpeq_epi8(_mm256_min_epu8(tu, z25), tu))
              << sh;
        dig |= (uint64_t)(uint32_t)_mm256_movemask_epi8(
                   _mm256_cmpeq_epi8(_mm256_min_epu8(u, z9), u))
               << sh;
        ws |= (uint64_t)(uint32_t)_mm256_movemask_epi8(wsv) << sh;
        nl |= (uint64_t)(uint32_t)_mm256_movemask_epi8(
                  _mm256_or_si256(_mm256_cmpeq_epi8(v, lf), _mm256_cmpeq_epi8(v, cr)))
              << sh;
        hi |= (uint64_t)(uint32_t)_mm256_movemask_epi8(v) << sh;
        apos |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, ap)) << sh;
        spc |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, sp)) << sh;
        if (slash)
            sl |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, sla)) << sh;
    }
    win_set(w, let, up, dig, ws, nl, hi, apos, spc, sl);
}
#endif

/*
 * What window_decide_hi_memo() found in a window, kept for the next window of the same text, which
 * begins inside it (at the last piece start the window gave): the characters it classified (their
 * bits before the window's own checks, in the window's offsets), the text offset of the window
 * (base) and of the first character it did not classify (stop), so that the next window classifies
 * only the characters from there on. valid 0: nothing kept.
 */
typedef struct hi_memo {
    size_t base, stop;
    uint64_t let, up, both, mark, done;
    int valid;
} hi_memo;

/*
 * The window's non-ASCII characters (w->hi, as classify made it), classified from the Unicode
 * table, so that windows decide the pieces of other scripts too. Every byte of a letter goes
 * into let: cl100k's \p{L}; o200k's two case classes, marks included, and into up too when it
 * is in the upper one only, into both when it is in both. Every byte of any other character goes
 * into oth (punctuation and symbols; cl100k's marks). What the masks cannot say stays in hi, so
 * that window_limit() stops there: whitespace and numbers outside ASCII (their rules count
 * characters, not bytes); U+017F, an s to the case-insensitive contractions; in o200k a mark
 * that follows anything but a letter (it may prefix a word, or start punctuation), and a mark or
 * letter of both cases two or three bytes after an apostrophe (after a contraction, where a word
 * ends); and a character that runs past the window. Nothing past the first such character
 * matters (the window decides nothing there), so the scan stops at it. Reads the window's 64
 * bytes only.
 *
 * The window is at text offset at and begins at a character's start; m has what the window
 * before it classified, which is taken where it covers this one, and gets what this one
 * classifies. The masks are the same either way: a character's class does not depend on the
 * window, and a window that stops at a character (no mask can say it, or it runs past the end)
 * classifies nothing after it, so this one goes on from that character.
 */
static inline void window_decide_hi_memo(win *w, const uint8_t *p, int o200k, hi_memo *m,
                                         size_t at)
{
    uint64_t cont = 0, let = 0, up = 0, both = 0, mark = 0, done = 0, lead, bad;
    unsigned from = 0, stop = WIN;

    for (int q = 0; q < WIN / 16; q++) { /* 0x80-0xbf: below -64 as signed bytes */
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * q));
        cont |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpgt_epi8(_mm_set1_epi8(-64), v))
                << (16 * q);
    }
    if (m->valid && at >= m->base && at < m->stop) { /* stop <= base + WIN: a shift below 64 */
        unsigned adv = (unsigned)(at - m->base);
        let = m->let >> adv;
        up = m->up >> adv;
        both = m->both >> adv;
        mark = m->mark >> adv;
        done = m->done >> adv;
        from = (unsigned)(m->stop - at);
    }
    lead = from < WIN ? w->hi & ~cont & (~(uint64_t)0 << from) : 0;
    for (uint64_t x = lead; x != 0; x &= x - 1) {
        unsigned i = (unsigned)__builtin_ctzll(x);
        unsigned len = (unsigned)__builtin_clz(~((uint32_t)p[i] << 24)); /* its leading ones */
        uint32_t cp;
        unsigned c;
        uint64_t bits;

        if (i + len > WIN) {
            stop = i; /* into hi, as the rest */
            break;
        }
        c = uc_class_mb(p + i, len, &cp);
        if ((c & (UC_WS | UC_N)) || cp == 0x17f) {
            stop = i;
            break;
        }
        bits = (~(uint64_t)0 >> (64 - len)) << i;
        done |= bits;
        if (o200k) {
            unsigned cs = c & (UC_UP | UC_LO);
            if (cs != 0)
                let |= bits;
            if (cs == UC_UP)
                up |= bits;
            else if (cs == (UC_UP | UC_LO))
                both |= bits;
            if (c & UC_M)
                mark |= (uint64_t)1 << i;
        } else if (c & UC_L) {
            let |= bits;
        }
    }
    m->base = at;
    m->stop = at + stop;
    m->let = let;
    m->up = up;
    m->both = both;
    m->mark = mark;
    m->done = done;
    m->valid = 1;
    if (o200k) {
        /* a mark after no letter, and a mark or letter of both cases after what may end a
         * contraction (x's + U+0301, x's + 中): whether it starts a word, or which, the masks
         * do not say */
        bad = (mark & ~((let | w->let) << 1)) | (both & ~cont & ((w->apos << 2) | (w->apos << 3)));
        if (bad != 0)
            done &= (bad & -bad) - 1;
    }
    w->let |= let & done;
    w->up |= up & done;
    w->both = both & done;
    w->cont = cont & done;
    w->hi &= ~done;
    w->oth = ~(w->let | w->dig | w->ws | w->hi);
}

/* window_decide_hi_memo() with nothing kept from a window before (tests, pretok_simd.c). */
static inline void window_decide_hi(win *w, const uint8_t *p, int o200k)
{
    hi_memo m = {.valid = 0};

    window_decide_hi_memo(w, p, o200k, &m, 0);
}

/*
 * The window's bytes from offset end on are past the text's end (zeros, in a padded copy): they
 * become whitespace that no rule reads as such, so that the text's last piece ends there, and
 * window_limit() lets the window decide up to the end (the start at the end included), when
 * nothing before it is left undecided. A run of whitespace at the end stays whole (no character
 * given back to a non-space that is not there), a contraction reads zeros after the end.
 */
static inline void window_pad(win *w, unsigned end)
{
    uint64_t pad = ~(uint64_t)0 << end;

    w->pad = pad;
    w->ws |= pad;
    w->oth &= ~pad;
    w->let &= ~pad;
    w->dig &= ~pad;
    w->hi &= ~pad;
}

/* Each bit of x on a continuation byte moved back to the lead of its character. */
static inline uint64_t char_lead(uint64_t x, uint64_t cont)
{
    if (cont == 0)
        return x;
    for (int k = 0; k < 3; k++)
        x = (x & ~cont) | ((x & cont) >> 1);
    return x;
}

/* Each bit of x, on a character's lead, spread over the bytes of its character. */
static inline uint64_t char_bytes(uint64_t x, uint64_t cont)
{
    if (cont == 0)
        return x;
    for (int k = 0; k < 3; k++)
        x |= (x << 1) & cont;
    return x;
}

#define BIT(m, k) (((m) >> (k)) & 1)

/*
 * Where the window decides nothing past its end: the offset below which every piece start it
 * computes is exact. A start reads the masks one byte ahead (the next byte says where a run
 * ends, whether a character prefixes a word), so the limit is the first byte no mask says (left
 * in hi, or the window's end), less one; and at most 61, so that a contraction at a start below
 * it reads its two letters inside the window (it reads bytes, not masks: exact whatever they
 * are). A run of whitespace that reaches that byte (which may be whitespace, U+00A0) is
 * undecided from its first byte. 0 when nothing is decided.
 */
static inline unsigned window_limit(const win *w)
{
    unsigned e = w->hi != 0 ? (unsigned)__builtin_ctzll(w->hi) : WIN, lim;
    uint64_t nonws;

    if (w->pad != 0) {
        unsigned end = (unsigned)__builtin_ctzll(w->pad);
        if (e >= end && end <= WIN - 4) /* the text ends here, and all of it is decided */
            return end + 1;
        if (end < e)
            e = end;
    }
    if (e < 2)
        return 0;
    lim = e - 1 < WIN - 3 ? e - 1 : WIN - 3;
    if (BIT(w->ws, e - 1)) {
        nonws = ~w->ws & (e < WIN ? ((uint64_t)1 << e) - 1 : ~(uint64_t)0);
        unsigned run = nonws != 0 ? 64 - (unsigned)__builtin_clzll(nonws) : 0;
        if (run < lim)
            lim = run;
    }
    return lim;
}

/* The starts of digit pieces (\p{N}{1,3}) in the digit mask d: every third from a run's start. */
static inline uint64_t digit_starts(uint64_t d)
{
    uint64_t x = d & ~(d << 1), st = x, d4 = d & (d << 1) & (d << 2) & (d << 3);

    while ((x = (x << 3) & d4) != 0) /* rare: runs of four digits or more */
        st |= x;
    return st;
}

/*
 * The starts of whitespace pieces in wf, the whitespace that no punctuation took (w all the
 * whitespace, n the line breaks): each run of wf starts one; a run with line breaks ends one
 * after its last (\s*[\r\n]+); its last character, when it is no line break, starts one of its
 * own (given back by \s+(?!\S), or prefixing what follows).
 */
static inline uint64_t space_starts(uint64_t wf, uint64_t w, uint64_t n)
{
    uint64_t v = n & wf, m = wf, lastn;

    /* v: a line break at or after the bit within its run of wf (smeared leftward) */
    v |= (v >> 1) & m;
    m &= m >> 1;
    v |= (v >> 2) & m;
    m &= m >> 2;
    v |= (v >> 4) & m;
    m &= m >> 4;
    v |= (v >> 8) & m;
    m &= m >> 8;
    v |= (v >> 16) & m;
    m &= m >> 16;
    v |= (v >> 32) & m;
    lastn = n & wf & ~((v >> 1) & wf);
    return (wf & ~(wf << 1)) | ((lastn << 1) & wf) | (wf & ~n & ~(w >> 1));
}

/*
 * The starts of cl100k's pieces in a window that begins at a piece's start, as a mask: bit 0,
 * and every start below window_limit(). The pieces are the spans between consecutive bits; the
 * highest bit is where the next window begins. Computed for all starts at once, with shifts and
 * ands over the class masks (no branch on a piece's class); the rules, each an alternative of
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ , taken where it wins in the pattern's leftmost-first order:
 *  - a punctuation run starts a piece, or its space does (` ?`); it takes the line breaks that
 *    follow it;
 *  - a contraction is an apostrophe that starts a piece (not after a space, not inside a run)
 *    followed by s, t, m, d, re, ve or ll in either case; the letters after it start anew;
 *  - a letter run starts a piece, or the character before it does: a whitespace other than a
 *    line break, or a one-character punctuation run that starts a piece and is no contraction;
 *  - digits start a piece every three from the start of their run;
 *  - whitespace not taken by punctuation: its run starts a piece; a run with line breaks ends a
 *    piece after its last one; the run's last character, when it is no line break, starts a
 *    piece of its own (given back by \s+(?!\S), or prefixing a word or punctuation).
 */
static inline uint64_t starts_cl100k(const win *w, const uint8_t *p)
{
    const uint64_t L = w->let, D = w->dig, W = w->ws, N = w->nl, P = w->oth, SP = w->sp;
    const uint64_t S = W & ~N, C = w->cont;
    unsigned lim = window_limit(w);
    uint64_t below = ((uint64_t)1 << lim) - 1; /* lim <= 61 */
    uint64_t pfree = P & ~(P << 1) & ~(SP << 1);
    uint64_t ap = pfree & w->apos & below, contr = 0, cend = 0;
    uint64_t pre, st, x, na, wf;

    while (ap != 0) { /* rare: apostrophes that start a piece; p[i + 2] is within the window */
        unsigned i = (unsigned)__builtin_ctzll(ap);
        uint8_t a = p[i + 1] | 0x20, b = p[i + 2] | 0x20; /* | 0x20 folds only A-Z onto a-z */
        ap &= ap - 1;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') {
            contr |= (uint64_t)1 << i;
            cend |= (uint64_t)1 << (i + 2);
        } else if (((a == 'r' || a == 'v') && b == 'e') || (a == 'l' && b == 'l')) {
            contr |= (uint64_t)1 << i;
            cend |= (uint64_t)1 << (i + 3);
        }
    }
    /* the characters that prefix the letter run after them (pre: the byte before the run, the
     * last of such a character; the piece starts at the character's lead) */
    pre = (L >> 1) & ~L & (S | char_bytes(pfree & ~contr, C));
    st = char_lead(pre, C) | (L & ~(L << 1) & ~(pre << 1) & ~(contr << 1)) | cend;
    /* digits, three at a time */
    st |= digit_starts(D);
    /* punctuation runs, from their space if one is before them */
    x = P & ~(P << 1);
    st |= (x & ~(SP << 1)) | ((x >> 1) & SP);
    /* line breaks right after punctuation are its; the whitespace left is free */
    x = (P << 1) & N;
    na = N & ((N + x) ^ N);
    wf = W & ~na;
    st |= space_starts(wf, W, N);
    return ((st | (w->pad & -w->pad)) & below) | 1;
}

/*
 * The starts of o200k's pieces in a window that begins at a piece's start, as a mask: the
 * contract of starts_cl100k() (bit 0, and every start below window_limit(), which is enough
 * here too: a contraction after a word that ends below the limit reads at most two bytes past
 * its apostrophe), but for the rare stop before the limit below. The rules, each an alternative of
 * [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...)?|
 * [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)?|
 * \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+ , taken where it wins
 * (the letters of the upper class only are in up, those of both classes in both; in ASCII the
 * upper class is A-Z, the lower one a-z, and no letter is in both):
 *  - a punctuation run's tail [\r\n/]* begins with the line break right after its run (a slash
 *    there would be in the run) and goes on over line breaks and slashes; a tail starts nothing,
 *    and what follows it starts anew (a slash in it prefixes no word: "}\n//x");
 *  - a punctuation run starts a piece, or its space does (` ?`); punctuation in a tail is no run;
 *  - a word is an upper-case run and the lower-case run after it, so a letter run starts a word,
 *    and so does every upper-case-only letter after the lower-case run ("Hello|World",
 *    "XMLParser": after a lower-case-only letter and the letters of both cases that follow it);
 *    a word with no lower-case-only letter that ends in letters of both cases and then
 *    upper-case-only ones gives the last of these back ("中É." is 中|É|.), and when that depends
 *    on letters past the limit the mask stops before the upper-case run;
 *    the character before a letter run starts the word instead when it may prefix it: a
 *    whitespace other than a line break, or a punctuation character (the apostrophe too) that
 *    starts a piece;
 *  - a word may end in a contraction ('s 't 're 've 'm 'll 'd in either case, right after its
 *    last letter): the apostrophe and its letters start nothing, the byte after them starts a
 *    piece; an apostrophe right after a contraction's letters ends no word ("x's|'d"), it is
 *    punctuation like any other;
 *  - digits, three at a time, and whitespace as in cl100k, without the tails' line breaks.
 */
static inline uint64_t starts_o200k(const win *w, const uint8_t *p)
{
    const uint64_t L = w->let, U = w->up, B = w->both, Lx = L & ~U & ~B, D = w->dig;
    const uint64_t W = w->ws, N = w->nl, P = w->oth, SP = w->sp, S = W & ~N, C = w->cont;
    unsigned lim = window_limit(w), cend = 0; /* cend: where the last contraction ended */
    uint64_t below = ((uint64_t)1 << lim) - 1; /* lim <= 61 */
    const uint64_t sl = w->sl;
    uint64_t t, x, a, tail, pn, pfree, pre, st, wf, ap, lo;

    /* the tails: in each run of line breaks and slashes, from its first line break right after
     * punctuation (x) to its end; a = the run without those line breaks, and the carry from
     * each run's first bit runs through a up to the first x of the run, or the run's end */
    t = N | sl;
    x = (P << 1) & N;
    a = t & ~x;
    tail = t & ~(((a + (t & ~(t << 1) & a)) ^ a) & a);
    /* the punctuation that starts a piece (its run's first, or the first after a tail) */
    pn = P & ~tail;
    pfree = pn & ~(pn << 1) & ~(SP << 1);
    /* words: the characters that prefix the letter run after them, the runs they do not
     * prefix, the upper case after the lower-case run (lo: the lower-case-only letters, and the
     * letters of both cases that follow one of them, carried through by the addition) */
    pre = (L >> 1) & (S | char_bytes(pfree, C)); /* as in starts_cl100k */
    lo = Lx | (((B + ((Lx << 1) & B)) ^ B) & B);
    st = char_lead(pre, C) | (L & ~(L << 1) & ~(pre << 1)) | (U & (lo << 1));
    if (B != 0) {
        /* a word with no lower-case-only letter that ends in both-case letters and then
         * upper-case-only ones ends after the last both-case one ("中É." is 中|É., the lower
         * run giving back to the last letter it may hold): rare outside ASCII mixes; the upper
         * run must end below the undecided byte, else nothing from its start is decided */
        unsigned e = w->hi != 0 ? (unsigned)__builtin_ctzll(w->hi) : WIN;
        for (uint64_t c = U & (B << 1) & ~(lo << 1) & below; c != 0; c &= c - 1) {
            unsigned i = (unsigned)__builtin_ctzll(c);
            unsigned land = i + (unsigned)__builtin_ctzll(~(U >> i));
            if (land >= e) {
                lim = i;
                below = ((uint64_t)1 << lim) - 1;
                break;
            }
            if (!BIT(L, land))
                st |= (uint64_t)1 << i;
        }
    }
    /* digits, three at a time */
    st |= digit_starts(D);
    /* punctuation runs, from their space if one is before them */
    st |= pfree | ((P >> 1) & SP);
    /* whitespace outside the tails, as in starts_cl100k */
    wf = W & ~tail;
    st |= space_starts(wf, W, N);
    /* contractions, in order (one may end where the next apostrophe is): rare, apostrophes
     * right after a letter; p[i + 2] is within the window */
    ap = w->apos & (L << 1) & below;
    while (ap != 0) {
        unsigned i = (unsigned)__builtin_ctzll(ap), c = 0;
        uint8_t ca = p[i + 1] | 0x20, cb = p[i + 2] | 0x20; /* | 0x20 folds only A-Z onto a-z */
        ap &= ap - 1;
        if (i == cend) /* after a contraction's letters: no word ends here */
            continue;
        if (ca == 's' || ca == 't' || ca == 'm' || ca == 'd')
            c = 2;
        else if (((ca == 'r' || ca == 'v') && cb == 'e') || (ca == 'l' && cb == 'l'))
            c = 3;
        if (c != 0) {
            st &= ~((((uint64_t)1 << c) - 1) << i);
            st |= (uint64_t)1 << (i + c);
            cend = i + c;
        }
    }
    return ((st | (w->pad & -w->pad)) & below) | 1;
}

#endif
