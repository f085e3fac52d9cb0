// Test strings for the tokenizer conformance test (tokenizer.test.mjs): fixed lists of the cases
// the pre-tokenizer's patterns make delicate, and a seeded generator that mixes scripts, marks,
// emoji, whitespace, digits, contractions, punctuation, code and special-token text. Everything
// here is deterministic: the same seed gives the same strings on every machine, so a failure
// seen once can be seen again. Every string is well-formed UTF-16 (no lone surrogates).

/** mulberry32: a small, fast 32-bit PRNG; returns a function giving floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cp = (n) => String.fromCodePoint(n);
const range = (lo, hi) => ({ lo, hi });

// ---- the characters ----------------------------------------------------------------------------

/** Every Unicode White_Space character. */
export const WHITE_SPACE = [
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
  0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
].map(cp);

// Characters that look like space but are not White_Space (format characters, one symbol).
const NOT_SPACE = ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u180e', '\u00ad', '\u2800'];

// Letters by script: each entry a range of code points or a string of characters.
const SCRIPTS = {
  latin: [range(0x61, 0x7a), range(0x41, 0x5a)],
  latinAccented: [range(0xc0, 0xd6), range(0xd8, 0xf6), range(0xf8, 0x17f), range(0x180, 0x24f),
    range(0x1e00, 0x1eff)],
  ipa: [range(0x250, 0x2af)],
  greek: [range(0x391, 0x3a9), range(0x3b1, 0x3c9), range(0x386, 0x38f), range(0x1f00, 0x1fbc)],
  cyrillic: [range(0x400, 0x482), range(0x48a, 0x4ff)],
  armenian: [range(0x531, 0x556), range(0x561, 0x587)],
  hebrew: [range(0x5d0, 0x5ea)],
  arabic: [range(0x620, 0x64a), range(0x671, 0x6d3)],
  devanagari: [range(0x905, 0x939), range(0x93e, 0x94c), '\u094d', '\u0902', '\u0903'],
  bengali: [range(0x985, 0x9b9), range(0x9be, 0x9cc)],
  tamil: [range(0xb85, 0xbb9), range(0xbbe, 0xbcd)],
  thai: [range(0xe01, 0xe3a), range(0xe40, 0xe4e)],
  lao: [range(0xe81, 0xeae)],
  tibetan: [range(0xf40, 0xf6c), range(0xf71, 0xf84)],
  myanmar: [range(0x1000, 0x103f)],
  georgian: [range(0x10d0, 0x10ff), range(0x10a0, 0x10c5), range(0x1c90, 0x1cba)],
  hangulJamo: [range(0x1100, 0x1112), range(0x1161, 0x1175), range(0x11a8, 0x11c2)],
  ethiopic: [range(0x1200, 0x1248), range(0x1250, 0x1256), range(0x12a0, 0x12af)],
  cherokee: [range(0x13a0, 0x13f5), range(0xab70, 0xabbf)],
  khmer: [range(0x1780, 0x17d3)],
  mongolian: [range(0x1820, 0x1878), '\u180b', '\u180e'],
  hiragana: [range(0x3041, 0x3096), '\u309d', '\u309e', '\u3099', '\u309a'],
  katakana: [range(0x30a1, 0x30fa), '\u30fc', '\u30fd'],
  halfwidthKana: [range(0xff66, 0xff9f)],
  cjk: [range(0x4e00, 0x9fff), '\u3005', '\u3007'],
  cjkExtB: [range(0x20000, 0x2a6df)],
  hangul: [range(0xac00, 0xd7a3)],
  fullwidthLatin: [range(0xff21, 0xff3a), range(0xff41, 0xff5a)],
  deseret: [range(0x10400, 0x1044f)],
  mathAlnum: [range(0x1d400, 0x1d6a5)],
  adlam: [range(0x1e900, 0x1e943)],
  gothic: [range(0x10330, 0x1034a)],
  vietnamese: ['ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđĐươƯƠ'],
};
const SCRIPT_NAMES = Object.keys(SCRIPTS);

const TITLECASE = 'ǅǈǋǲᾈᾉᾊᾋᾌᾍᾎᾏᾘᾙᾚᾛᾜᾝᾞᾟᾨᾩᾪᾫᾬᾭᾮᾯᾼῌῼ';
const MODIFIER = 'ʰʱʲʳʷʸˀˁˆˇˈˉˊˋˌˍˎˏːˑˠˡˢˣˤᴬᴮᵃᵇᵈᵉᵐⁱⁿₐₑₒꜗꜘꜙꞈꟸꟹーゝゞ々〱〲ｰ';
const OTHER_LETTER = 'ªºƻǀǁǂǃʔאℵℶ豈ㄅㆠꀀ';
const UPPER_ODD = 'İĲŊÞƁƆƐƓƔƩƱǄǇǊǱȺȻȾɃɄɅΣϴЀЍЯԱႠᏴℂℍℕℙℚℝℤΩKÅℰℱℳⅭ';
const LOWER_ODD = 'ıĳŋþßſɐɑɒɓɔɕɖɗɘəɚɛƀƛȡȴȵȶȷȸȹσςϐϑϕϖϰϱϵђћᏸꭰﬀﬁﬂﬃﬄﬅﬆ';

// Combining marks: Mn, Mc and Me from several blocks.
const MARKS = [range(0x300, 0x36f), range(0x483, 0x489), range(0x591, 0x5bd), range(0x64b, 0x65f),
  range(0x93c, 0x94d), range(0xe31, 0xe3a), range(0x1ab0, 0x1ace), range(0x1dc0, 0x1dff),
  range(0x20d0, 0x20f0), range(0xfe20, 0xfe2f), range(0x1d165, 0x1d169), '\u3099\u309a',
  range(0xfe00, 0xfe0f), range(0xe0100, 0xe010f), '\u0903\u093e\u093f\u0940'];

const DIGIT_SETS = [
  '0123456789', '0123456789', '0123456789',
  '٠١٢٣٤٥٦٧٨٩', '۰۱۲۳۴۵۶۷۸۹', '०१२३४५६७८९', '০১২৩৪৫৬৭৮৯', '๐๑๒๓๔๕๖๗๘๙', '０１２３４５６７８９',
  '¹²³⁰⁴⁵⁶⁷⁸⁹', '₀₁₂₃₄₅₆₇₈₉', 'ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅪⅫⅬⅭⅮⅯↁↂ', '½¼¾⅓⅔⅛⅞↉', '①②③④⑤⑥⑦⑧⑨⑩⑳㉑',
  '〇〡〢〣〤〥〦〧〨〩', '𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗𝟘𝟙𝟡', '𐍁𐍊', '᠐᠑᠒᠓᠔᠕᠖᠗᠘᠙', '௦௧௨௩௪௫௬௭௮௯௰௱௲',
];

const ASCII_PUNCT = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
const UNI_PUNCT = '¡¿«»‹›„“”‘’‚—–‐…•·§¶†‡‰′″‴※‼⁇⁈⁉、。「」『』【】〈〉《》〔〕・！？，．：；＂＇（）［］｛｝＼／' +
  '€£¥¢₹₽₿©®™°±×÷∞≈≠≤≥∑∏√∫∂∇∈∉∩∪⊂⊃←→↑↓↔⇒⇔■□▲△●○◆◇★☆♠♣♥♦♪♫✓✔✗✘❤' +
  '\u00a8\u00af\u00b4\u00b8\u02c2\u02c5\u02d2\u02df\u2e2f\u02e5\u02e9\uff3e\uff40\uffe3';

const EMOJI = [range(0x1f600, 0x1f64f), range(0x1f300, 0x1f5ff), range(0x1f680, 0x1f6c5),
  range(0x1f900, 0x1f9ff), range(0x1fa70, 0x1fa7c), '☀☁☂☃★☺☻♀♂⚡⛄✂✈✉✊✋✌✍❄❤'];
const SKIN = [0x1f3fb, 0x1f3fc, 0x1f3fd, 0x1f3fe, 0x1f3ff].map(cp);
const ZWJ_SEQUENCES = [
  '👨‍👩‍👧‍👦', '👩‍❤️‍💋‍👨', '🏳️‍🌈', '🏴‍☠️', '👩🏽‍💻', '🧑🏿‍🤝‍🧑🏻', '👁️‍🗨️', '🐕‍🦺', '❤️‍🔥',
  '🧔🏾‍♀️', '👨‍👨‍👦', '🤷‍♂️', '🏃🏻‍♀️‍➡️',
];
const FLAGS = ['🇺🇸', '🇯🇵', '🇩🇪', '🇫🇷', '🇧🇷', '🇮🇳', '🇺🇦', '🇪🇺', '🇺🇳', '🇦🇶',
  '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '🏴󠁧󠁢󠁷󠁬󠁳󠁿'];
const KEYCAPS = ['1️⃣', '#️⃣', '*️⃣', '0⃣', '9️⃣', '🔟'];

// Unassigned code points, noncharacters and private use: both sides must agree on what they
// are not.
const UNASSIGNED = ['\u0378', '\u{e0080}', '\u{3134f}', '\ue000', '\u{f0000}', '\u{10ffff}',
  '\ufdd0', '\uffff', '\u{40000}', '\u{e01f0}'];

/**
 * Characters Unicode 15.1 and 16.0 added, with the classes that matter here: tiktoken 1.0.22's
 * regex tables (regex-syntax 0.8.5) are Unicode 16.0. In the same strings as the rest they would
 * hide every other difference, so they have a test of their own.
 */
export const RECENT = [
  '\u{2ebf0}', '\u{2ee5d}', // 15.1: CJK Extension I (Lo)
  '\u{1c89}', '\u{1c8a}', '\ua7cb', '\ua7cc', '\ua7cd', '\ua7da', '\ua7db', '\ua7dc', // 16.0: Lu, Ll
  '\u{10d40}', '\u{10d4a}', '\u{10d50}', '\u{10d70}', // Garay: Nd, Lo, Lu, Ll
  '\u{16d40}', '\u{16d43}', '\u{16d70}', // Kirat Rai: Lm, Lo, Nd
  '\u{11bc0}', '\u{11bf0}', '\u{1e5d0}', '\u{1e5f1}', '\u{16100}', '\u{16130}', // Lo and Nd
  '\u{1ccf0}', '\u{1ccf9}', '\u{105c0}', '\u{1e5ee}', '\u{1611e}', // outlined digits Nd, Lo, Mn
];

/** The special-token strings of the four encodings, whole and cut short. */
export const SPECIALS = ['<|endoftext|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>',
  '<|endofprompt|>'];
const SPECIAL_BITS = [...SPECIALS, '<|endoftext', '<|endoftext|', 'endoftext|>', '<|', '|>',
  '<||>', '<|im_start|>', '<|im_end|>', '<|ENDOFTEXT|>', '< |endoftext|>', '<|endoftext|>>',
  '<<|endoftext|>', '<|fim_prefix', '<|endofprompt', '<|endof', '|endoftext|'];

const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Re", "'rE",
  "'VE", "'Ve", "'vE", "'M", "'LL", "'Ll", "'lL", "'D", "'ſ", "'ſt", "'K", "'st", "'ss", "'dd",
  "'ll'", "''s", "'", "’s", "’t", "'ß", "'İ", "'ı", "'Σ"];

const CODE = [
  'int main(int argc, char **argv) {\n\treturn 0;\n}\n',
  'for (size_t i = 0; i < n; i++) x[i] += y[i] * 2;',
  '#include <stdio.h>\r\n#define MAX(a,b) ((a)>(b)?(a):(b))\r\n',
  'def f(x, *args, **kw):\n    """Doc."""\n    return [y**2 for y in x if y % 2 == 0]\n',
  "    if __name__ == '__main__':\n        main()\n\n\n",
  'const f = async (a) => { await g(a?.b ?? 0); };',
  'SELECT id, "name" FROM users WHERE age >= 18 AND email LIKE \'%@x.org\';',
  '{"key": [1, 2.5e-3, true, null], "nested": {"a": "b\\n"}}',
  '$ ls -la | grep -v "^d" > /tmp/out.txt 2>&1 && echo $?',
  '<div class="x"><a href="/p?q=1&amp;r=2">link</a></div>',
  'fn main() -> Result<(), Box<dyn Error>> { Ok(()) }',
  '\t\t\tcase 0x1F: /* unit separator */ break;',
  'x = a[i:j] // 2 ** -3 >> 1 << 4 ^ ~0 | 0b1010 & 0o17',
  '// TODO(someone): fix this!!!\r\n/* ... */',
  '    \n    \n\t\n',
  '#!/usr/bin/env bash\nset -euo pipefail\nIFS=$\'\\n\\t\'\n',
  'let s = "héllo wörld 😀"; println!("{s:?}");',
  'ПРИВЕТ_МИР = 42  # комментарий',
];

const URLS = [
  'https://example.com/path/to/page?query=1&x=%20y#frag',
  'http://user:pass@host.example.org:8080/a/b/../c',
  'ftp://ftp.example.net/pub/file.tar.gz',
  'mailto:someone@example.com',
  'https://ja.wikipedia.org/wiki/日本語',
  'https://example.com/api/v1/users/12345/posts?sort=desc&limit=100',
  'www.example.co.uk/~user/index.html',
  'file:///C:/Program%20Files/app.exe',
  'https://github.com/openai/tiktoken/blob/main/src/lib.rs#L42-L99',
  'git@github.com:owner/repo.git',
];

const WORDS = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'hello', 'world',
  'token', 'gate', 'naïve', 'café', 'résumé', 'über', 'straße', 'Ångström', 'jalapeño', 'façade',
  'Москва', 'Ελλάδα', 'שלום', 'مرحبا', 'नमस्ते', 'สวัสดี', '日本語', '中文', '한국어', 'ひらがな',
  'カタカナ', 'ქართული', 'Հայերեն', 'ሰላም', 'Ǆemal', 'İstanbul', 'ǅungla', 'McDonald', 'iPhone',
  'XMLHttpRequest', 'getElementById', 'HTTPServer', 'snake_case_name', 'ALLCAPS', 'camelCase',
  'PascalCase', 'O', 'I', 'a', 'Ⅻ', 'x²', 'H₂O', 'ﬁnance', 'ǈubljana', 'Ωmega', 'ℌilbert'];

// ---- the generator -------------------------------------------------------------------------------

class Gen {
  constructor(seed) {
    this.r = prng(seed);
  }

  int(n) {
    return Math.floor(this.r() * n);
  }

  between(lo, hi) {
    return lo + this.int(hi - lo + 1);
  }

  chance(p) {
    return this.r() < p;
  }

  pick(a) {
    return a[this.int(a.length)];
  }

  /** One character of a pool: ranges and strings, each entry equally likely. */
  char(pool) {
    const e = this.pick(pool);
    if (typeof e === 'string') return this.pick([...e]);
    return cp(this.between(e.lo, e.hi));
  }

  chars(pool, n) {
    let s = '';
    for (let i = 0; i < n; i++) s += this.char(pool);
    return s;
  }

  marks(n) {
    return this.chars(MARKS, n);
  }

  /** Latin text with accents precomposed, decomposed or stacked. */
  latinWord() {
    const n = this.between(1, 12);
    let s = '';
    for (let i = 0; i < n; i++) {
      const k = this.int(10);
      if (k < 6) s += this.char(SCRIPTS.latin);
      else if (k < 8) s += this.char(SCRIPTS.latinAccented);
      else if (k < 9) s += this.char(SCRIPTS.latin) + this.marks(1);
      else s += this.char(SCRIPTS.latin) + this.marks(this.between(2, 5));
    }
    return this.cased(s);
  }

  /** Applies a case style: o200k's pattern splits words at case changes. */
  cased(s) {
    switch (this.int(7)) {
      case 0: return s.toUpperCase();
      case 1: return s.toLowerCase();
      case 2: return s.charAt(0).toUpperCase() + s.slice(1);
      case 3: return [...s].map((c) => (this.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join('');
      case 4: return [...s].map((c, i) => (i % 3 === 0 ? c.toUpperCase() : c)).join('');
      default: return s;
    }
  }

  scriptWord() {
    const name = this.pick(SCRIPT_NAMES);
    let s = this.chars(SCRIPTS[name], this.between(1, 10));
    if (this.chance(0.2)) s += this.marks(this.between(1, 3));
    return this.chance(0.3) ? this.cased(s) : s;
  }

  word() {
    const k = this.int(10);
    if (k < 3) return this.latinWord();
    if (k < 6) return this.scriptWord();
    if (k < 9) return this.cased(this.pick(WORDS));
    return this.chars([TITLECASE, MODIFIER, OTHER_LETTER, UPPER_ODD, LOWER_ODD,
      SCRIPTS.latin[0], SCRIPTS.latin[1]], this.between(1, 8));
  }

  contraction() {
    const c = this.pick(CONTRACTIONS);
    switch (this.int(6)) {
      case 0: return c;
      case 1: return this.word() + c;
      case 2: return c + this.word();
      case 3: return this.word() + c + this.word();
      case 4: return this.pick([' ', '', '1', '.', '\n', this.pick(WHITE_SPACE)]) + c;
      default: return this.cased(this.pick(['don', 'can', 'won', 'she', 'they', 'I', 'we', 'it',
        'O', 'rock']) + c) + this.pick(['', ' ', '.', c]);
    }
  }

  digits() {
    const n = this.between(1, 10);
    if (this.chance(0.8)) return this.chars([this.pick(DIGIT_SETS)], n);
    return this.chars(DIGIT_SETS, n);
  }

  number() {
    switch (this.int(6)) {
      case 0: return this.digits() + '.' + this.digits();
      case 1: return this.digits() + ',' + this.digits() + ',' + this.digits();
      case 2: return '-' + this.digits() + 'e' + this.pick(['+', '-', '']) + this.digits();
      case 3: return this.digits() + this.word();
      case 4: return this.word() + this.digits();
      default: return this.digits();
    }
  }

  spaces() {
    const n = this.between(1, 6);
    let s = '';
    for (let i = 0; i < n; i++) {
      const k = this.int(6);
      if (k < 3) s += this.pick(WHITE_SPACE);
      else if (k < 4) s += ' ';
      else if (k < 5) s += this.pick(['\r\n', '\n', '\r', '\n\n', '\r\n\r\n']);
      else s += this.pick(['\t', '  ', '\u3000', '\u00a0']);
    }
    return s;
  }

  /** Whitespace followed by what decides how it is split. */
  spaceRun() {
    const follow = this.pick(['', 'a', 'A', 'é', '1', '١', '.', "'s", '(', '\r\n', '\n', '😀', 'ǅ',
      '\u0301', '/', '日', 'ʰ', '_', this.word()]);
    return this.spaces() + follow;
  }

  punct() {
    let s = this.chars([ASCII_PUNCT, UNI_PUNCT, ASCII_PUNCT], this.between(1, 6));
    const tail = this.int(8);
    if (tail === 0) s += '\r\n';
    else if (tail === 1) s += this.pick(['/', '//', '/\n', '\n/', '/\r\n', '///']);
    else if (tail === 2) s += this.pick(['\n', '\n\n', '\r', '\r\r\n']);
    else if (tail === 3) s += ' ' + this.word();
    else if (tail === 4) s = ' ' + s;
    return s;
  }

  emoji() {
    switch (this.int(7)) {
      case 0: return this.char(EMOJI) + this.pick(SKIN);
      case 1: return this.pick(ZWJ_SEQUENCES);
      case 2: return this.pick(FLAGS);
      case 3: return this.pick(KEYCAPS);
      case 4: return this.char(EMOJI) + '\ufe0f';
      case 5: return this.chars(EMOJI, this.between(2, 5));
      default: return this.char(EMOJI);
    }
  }

  /** Combining marks where no letter carries them: at the start, after digits, spaces, punctuation. */
  strayMarks() {
    const m = this.marks(this.between(1, 6));
    switch (this.int(6)) {
      case 0: return m + this.word();
      case 1: return this.digits() + m;
      case 2: return this.pick([' ', '\t', '\n', '\u3000']) + m + this.word();
      case 3: return this.pick([...ASCII_PUNCT]) + m;
      case 4: return m + this.pick(["'s", "'LL", '1', ' ', '']);
      default: return m;
    }
  }

  lettersOfKind() {
    const pool = this.pick([TITLECASE, MODIFIER, OTHER_LETTER, UPPER_ODD, LOWER_ODD]);
    const s = this.chars([pool], this.between(1, 4));
    switch (this.int(5)) {
      case 0: return s + this.latinWord();
      case 1: return this.latinWord() + s;
      case 2: return s + this.pick(CONTRACTIONS);
      case 3: return this.pick(['', ' ', '1', '.']) + s + this.pick(['', 'abc', 'ABC', ' ']);
      default: return s;
    }
  }

  special() {
    const s = this.pick(SPECIAL_BITS);
    return this.pick(['', ' ', 'a', '\n', '.', this.word()]) + s + this.pick(['', ' ', 'x', '\n']);
  }

  url() {
    return this.pick(['', ' ', '(', '<', '"']) + this.pick(URLS) + this.pick(['', '.', ')', '>', '"', '/']);
  }

  longWord() {
    const n = this.between(300, 700);
    switch (this.int(4)) {
      case 0: return this.chars(SCRIPTS.latin, n);
      case 1: return this.chars(SCRIPTS[this.pick(SCRIPT_NAMES)], this.between(150, 400));
      case 2: {
        let s = '';
        while (s.length < n) s += this.pick(WORDS);
        return s;
      }
      default: return this.pick(WORDS).repeat(this.between(40, 100));
    }
  }

  longRun() {
    const c = this.pick([' ', '\n', '\t', '\r\n', 'a', 'A', '1', '!', '.', '-', '=', '/', "'",
      '😀', 'é', 'e\u0301', '\u0301', 'ー', '日', '\u00a0', '\u3000', '٣', 'ǅ', 'ʰ', '<|', '🇺🇸']);
    return c.repeat(this.between(50, 600));
  }

  /** A few characters drawn from one representative of every class the patterns tell apart. */
  soup() {
    const pool = [
      'aAzZ', 'éÉßſıİ', "'''", 'sStTdDmMlLrReEvV', '0123456789', '٣१２²Ⅻⅻ½①', ' ', ' ', '\t',
      '\r\n', '\n', '\r', '\u00a0\u2003\u3000\u0085\u2028\u000b\u000c', '\u0301\u0308\u0903\u20dd',
      'ǅᾈ', 'ʰー々', 'ª日ㅎא', '.,!?/-_"(', '/', '…—«»', '😀👍🏽🇯🇵', '\u200d\ufe0f\u200b', '<|>',
    ];
    return this.chars(pool, this.between(1, 16));
  }

  fragment() {
    switch (this.int(22)) {
      case 0: case 1: case 2: return this.word();
      case 3: return this.contraction();
      case 4: return this.number();
      case 5: return this.spaceRun();
      case 6: return this.punct();
      case 7: return this.emoji();
      case 8: return this.strayMarks();
      case 9: return this.lettersOfKind();
      case 10: return this.special();
      case 11: return this.pick(CODE);
      case 12: return this.url();
      case 13: return this.soup();
      case 14: return this.pick(NOT_SPACE) + this.pick(['', 'a', ' ', '1']);
      case 15: return this.pick(UNASSIGNED);
      case 16: return this.spaces();
      case 17: return this.contraction();
      case 18: return this.soup();
      case 19: return this.chance(0.15) ? this.longWord() : this.word();
      case 20: return this.chance(0.15) ? this.longRun() : this.digits();
      default: return this.scriptWord();
    }
  }

  string() {
    const k = this.int(10);
    if (k < 3) return this.fragment();
    if (k < 5) return this.soup();
    const n = this.between(2, 10);
    let s = '';
    for (let i = 0; i < n; i++) {
      s += this.fragment();
      const sep = this.int(6);
      if (sep === 0) s += ' ';
      else if (sep === 1) s += this.pick(WHITE_SPACE);
    }
    return s;
  }
}

// ---- fixed lists ----------------------------------------------------------------------------------

/** The cases each pattern alternative turns on, spelled out rather than left to chance. */
export function edgeCases() {
  const out = [];
  const followers = ['', 'a', 'A', 'é', 'ǅ', 'ʰ', '日', '1', '١', '²', '.', '!', "'s", '/', '\r\n', '\n',
    '\r', ' ', '\u0301', '😀', '<|endoftext|>'];
  for (const w of WHITE_SPACE) {
    for (const f of followers) {
      out.push(w + f, 'x' + w + f, 'x' + w + w + f, w + w + w + f, 'x ' + w + f, '.' + w + f);
    }
    for (const w2 of WHITE_SPACE) out.push(w + w2, 'a' + w + w2 + 'b', w + w2 + '\n');
  }
  for (const c of CONTRACTIONS) {
    for (const pre of ['', 'a', 'A', 'É', 'ǅ', 'ʰ', '日', '1', ' ', '  ', '.', "'", '\n', 'x\u0301',
      'don', 'DON', 'Don', 'dOn']) {
      for (const post of ['', 'x', 'X', ' ', '1', '.', "'", 'ſ', '\n']) out.push(pre + c + post);
    }
  }
  for (const set of DIGIT_SETS) {
    const ds = [...set];
    for (let n = 1; n <= 10; n++) {
      let s = '';
      for (let i = 0; i < n; i++) s += ds[i % ds.length];
      out.push(s, ' ' + s, 'a' + s, s + 'a', s + '.' + s, '\u0301' + s + '\u0301', s + ' ' + s);
    }
  }
  for (const t of [TITLECASE, MODIFIER, OTHER_LETTER, UPPER_ODD, LOWER_ODD]) {
    for (const ch of t) {
      out.push(ch, 'a' + ch + 'b', 'A' + ch + 'B', 'ab' + ch + 'CD', 'AB' + ch + 'cd', ch + "'s",
        ' ' + ch + 'x', ch + ch + ch, ch + '\u0301' + "'LL");
    }
  }
  for (const w of ['hello', 'HELLO', 'Hello', 'hELLO', 'HeLLo', 'HTTPServer', 'getHTTPResponse',
    'ABCdefGHI', 'aBc', 'ABc', 'AbC', 'É\u0301a', 'e\u0301E\u0301', 'A\u0301B\u0301c\u0301',
    'ǅa', 'aǅ', 'Aǅa', 'ʰA', 'Aʰa', 'aʰA', 'ªA', 'Aªa', 'ΣΑΣ', 'σας', 'İi', 'ß', 'ẞ']) {
    for (const c of ['', "'s", "'S", "'LL", "'ll", "'ſ", "'re", "'"]) {
      out.push(w + c, ' ' + w + c, '.' + w + c, w + c + '.', '1' + w + c, w + c + 'x');
    }
  }
  for (const p of ['.', '!!!', '...', '?!', '-->', '**', '}}}', '」', '…', '"', "'", '/']) {
    for (const t of ['\r\n', '\n', '\r', '\r\n\r\n', '/', '//', '/\n', '\n/', ' /', '\r\n/', ' ', 'a',
      '\u0301', '']) {
      out.push(p + t, ' ' + p + t, 'x' + p + t, p + t + 'x');
    }
  }
  for (const m of ['\u0301', '\u0301\u0302\u0303', '\u20dd', '\u0903', '\u0488', '\ufe0f', '\u{e0100}']) {
    out.push(m, m + 'a', m + 'A', m + '1', m + ' ', m + "'s", '1' + m, ' ' + m, '.' + m, '\n' + m,
      'a' + m, 'A' + m + 'b', 'a' + m + 'B', "'" + m, m + m + 'x', '\t' + m + 'a', '1' + m + '2');
  }
  for (const s of SPECIAL_BITS) out.push(s, ' ' + s, s + s, 'a' + s + 'b', s + '\n', '\n' + s);
  out.push(...CODE, ...URLS, ...ZWJ_SEQUENCES, ...FLAGS, ...KEYCAPS, ...UNASSIGNED, ...NOT_SPACE);
  for (const ch of [' ', '\n', '\r\n', 'a', '1', '!', "'", '\u0301', '😀', '\u3000', 'ǅ']) {
    for (const n of [2, 3, 4, 100, 1000]) out.push(ch.repeat(n), ch.repeat(n) + 'x');
  }
  out.push('', 'a'.repeat(5000), 'ab'.repeat(1000), 'abc '.repeat(500), '1'.repeat(4000));
  return out;
}

/** n generated strings from the seed. */
export function generatedStrings(seed, n) {
  const g = new Gen(seed);
  const out = [];
  for (let i = 0; i < n; i++) out.push(g.string());
  return out;
}

/**
 * Random byte strings with ill-formed UTF-8: valid text with stray, truncated, overlong and
 * surrogate sequences cut into it.
 */
export function invalidUtf8Buffers(seed, n) {
  const g = new Gen(seed);
  const bad = ['\xff', '\xfe', '\xc0\x80', '\xc1\xbf', '\xe0\x80\x80', '\xe0\x9f\xbf',
    '\xf0\x80\x80\x80', '\xf0\x8f\xbf\xbf', '\xed\xa0\x80', '\xed\xbf\xbf', '\xed\xa0\x80\xed\xb0\x80',
    '\xf4\x90\x80\x80', '\xf5\x80', '\xf8\x88\x80\x80\x80', '\xfc\x84\x80\x80\x80\x80', '\xc3',
    '\xe2\x82', '\xf0\x9f\x98', '\xf0\x9f', '\xf0', '\x80', '\xbf\xbf', '\xe9', '\x92', '\xa0'];
  const out = [];
  for (let i = 0; i < n; i++) {
    const parts = [];
    const k = g.between(1, 6);
    for (let j = 0; j < k; j++) {
      if (g.chance(0.5)) parts.push(Buffer.from(g.pick(bad), 'latin1'));
      if (g.chance(0.2)) parts.push(Buffer.from([g.between(0x80, 0xff)]));
      parts.push(Buffer.from(g.chance(0.3) ? g.soup() : g.fragment(), 'utf8'));
    }
    out.push(Buffer.concat(parts));
  }
  return out;
}

/**
 * Strings that make pre-tokenizer pieces longer than 256 bytes (tokengate merges those on a heap
 * rather than in arrays): repeated pairs and triples, random letters of several scripts, words run
 * together, emoji and punctuation runs, whitespace, marks, lengths around the boundary and far past.
 */
export function longPieces(seed) {
  const g = new Gen(seed);
  const out = [];
  const fill = (n, f) => {
    let s = '';
    while (Buffer.byteLength(s) < n) s += f();
    return s;
  };
  for (const n of [255, 256, 257, 258, 300, 511, 512, 513, 1000, 2048, 5000]) {
    out.push(
      fill(n, () => 'ab'), 'a' + fill(n, () => 'ba'), fill(n, () => 'abc'), fill(n, () => 'aab'),
      fill(n, () => g.char(SCRIPTS.latin.slice(0, 1))),
      fill(n, () => g.pick(WORDS.slice(0, 12))),
      fill(n, () => g.char(SCRIPTS.cjk)), fill(n, () => g.char(SCRIPTS.cyrillic)),
      fill(n, () => g.char(SCRIPTS.hangul)), fill(n, () => g.char(SCRIPTS.thai)),
      fill(n, () => g.char(SCRIPTS.devanagari)), fill(n, () => g.char(SCRIPTS.latinAccented)),
      fill(n, () => 'e\u0301'), fill(n, () => 'Hello'), fill(n, () => 'HELLO'),
      fill(n, () => g.char(EMOJI)), fill(n, () => g.pick([...ASCII_PUNCT])), fill(n, () => '=-'),
      fill(n, () => g.pick([' ', '\t', '\u3000', '\u00a0'])) + 'x', fill(n, () => '\n '),
      ' ' + fill(n, () => 'xy'), fill(n, () => '\u0301'), fill(n, () => g.char(SCRIPTS.latin)),
    );
  }
  return out;
}
