/*
 * Corpus replay driver for builds without libFuzzer: runs the target once per
 * file named on the command line, or for every file of the directories named.
 * With no argument it replays $top_srcdir/tests/fuzz/corpus/<program name>.
 * Prints how many inputs ran; a crash or sanitizer report fails the test.
 */
#include "config.h"

#include <dirent.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int kz_replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    /* Copy to an exact-size buffer so ASan catches any overread. */
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    if (len)
        memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int kz_replay_path(const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return kz_replay_file(path);
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        perror(path);
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        if (kz_replay_path(sub, count) != 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0, rc = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (kz_replay_path(argv[i], &count) != 0)
                rc = 1;
    } else {
        const char *top = getenv("top_srcdir");
        char self[4096], dir[4096];
        snprintf(self, sizeof(self), "%s", argv[0]);
        snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", top ? top : ".", basename(self));
        if (kz_replay_path(dir, &count) != 0)
            rc = 1;
    }
    printf("%s: replayed %d inputs\n", argv[0], count);
    if (count == 0) {
        fprintf(stderr, "%s: no corpus inputs found\n", argv[0]);
        rc = 1;
    }
    return rc;
}
