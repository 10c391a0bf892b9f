/* jsonutil.h - small helpers over jansson shared by the JSON parsers. */
#ifndef EGRESSSCAN_JSONUTIL_H
#define EGRESSSCAN_JSONUTIL_H

struct json_t;

/* "an object", "an array", "a string", "a number", "a boolean", "null": for error messages
 * about values of the wrong type. */
const char *json_type_name(const struct json_t *v);

#endif
