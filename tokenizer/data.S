/*
 * The rank files, linked into the binary as read-only data so that no file is needed at run
 * time. The assembler finds them through the -I option tokenizer/meson.build passes it.
 */
#define RANKS(sym, file)          \
    .globl sym, sym##_end;        \
    .balign 16;                   \
sym:                              \
    .incbin file;                 \
sym##_end:                        \
    .byte 0

    .section .rodata
RANKS(tok_data_cl100k, "cl100k_base.tkr")
RANKS(tok_data_o200k, "o200k_base.tkr")
RANKS(tok_data_p50k, "p50k_base.tkr")
RANKS(tok_data_r50k, "r50k_base.tkr")

    .section .note.GNU-stack, "", @progbits
