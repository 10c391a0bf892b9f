/* atomicfile.c - a file replaced whole (mkstemp in the same directory, fsync, rename): the report
 * of `egressscan report --out` and the metrics file of `scan --metrics-file`. */
#include "common/atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The rename is durable once the directory is on disk too; a failure here changes nothing the
 * caller could act on. */
static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

int atomicfile_write(const char *path, atomicfile_fill_fn fill, void *ud, struct err *err)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return err_set(err, ERR_NOMEM, "out of memory");
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        err_set(err, ERR_IO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
        /* keep mkstemp's 0600: still a usable file */
    }
    FILE *out = fdopen(fd, "w");
    int rc = -1;
    if (!out) {
        err_set(err, ERR_IO, "%s: %s", tmp, strerror(errno));
        close(fd);
    } else {
        rc = fill(out, ud, err);
        if (rc == 0 && (fflush(out) != 0 || fsync(fileno(out)) != 0))
            rc = err_set(err, ERR_IO, "%s: %s", tmp, strerror(errno));
        if (fclose(out) != 0 && rc == 0)
            rc = err_set(err, ERR_IO, "%s: %s", tmp, strerror(errno));
        if (rc == 0 && rename(tmp, path) != 0)
            rc = err_set(err, ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (rc < 0)
        unlink(tmp);
    else
        sync_dir(path);
    free(tmp);
    return rc;
}
