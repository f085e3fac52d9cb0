#include <stdio.h>
int main(void) { puts("tokengate"); return 0; }
