/* placeholder, replaced by the config loader */
int conf_placeholder(void);
int conf_placeholder(void) { return 0; }
