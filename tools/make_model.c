/* make_model.c - placeholder */
int main(void) { return 1; }
