#include <stdio.h>
int main(void) { puts("mock"); return 0; }
