/* xmldoc.h - reading XML answers from the network (STS, EC2, awsQuery error bodies) with libxml2,
 * one way for every module: UTF-8, no network, no DTD loading, no entity substitution, silent. */
#ifndef EGRESSSCAN_XMLDOC_H
#define EGRESSSCAN_XMLDOC_H

#include <stddef.h>

struct _xmlDoc;

/* Parses body as UTF-8 (AWS answers in UTF-8; a declared encoding is ignored) without network
 * access, DTD loading or entity substitution, and without libxml2 printing anything: it writes
 * some errors (bad encodings among them) to stderr even with XML_PARSE_NOERROR. extra_options
 * (XML_PARSE_*) are added. A new document (xmlFreeDoc), or NULL when body is empty, larger than
 * INT_MAX or not well-formed. Callers still refuse documents that carry a DTD. */
struct _xmlDoc *xmldoc_read(const char *body, size_t len, int extra_options);

#endif
