/* ec2.c - EC2 DescribeRegions (EC2 query protocol): the regions enabled in an account, parsed
 * from the XML answer with libxml2 (no network, no DTD, no entity substitution). Regions an
 * account has not opted into are left out. */
#include "scanner/ec2.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scanner/creds.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/xmldoc.h"

static const char describe_regions_body[] = "Action=DescribeRegions&Version=2016-11-15";

static int is_elem(const xmlNode *n, const char *local_name)
{
    return n->type == XML_ELEMENT_NODE && n->name && strcmp((const char *)n->name, local_name) == 0;
}

static const xmlNode *child_elem(const xmlNode *parent, const char *local_name)
{
    for (const xmlNode *c = parent->children; c; c = c->next) {
        if (is_elem(c, local_name))
            return c;
    }
    return NULL;
}

/* Whether n holds anything but text, CDATA and comments (elements, entity references). */
static int has_non_text(const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next)
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE &&
            c->type != XML_COMMENT_NODE)
            return 1;
    return 0;
}

/* The element's text (text and CDATA children only; entity references are not followed), as
 * a new string with surrounding whitespace trimmed; NULL on ENOMEM. */
static char *elem_text(const xmlNode *n)
{
    size_t len = 0;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
            len += strlen((const char *)c->content);
    }
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    size_t off = 0;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
            size_t l = strlen((const char *)c->content);
            memcpy(s + off, c->content, l);
            off += l;
        }
    }
    s[off] = '\0';
    size_t start = strspn(s, " \t\r\n");
    while (off > start && strchr(" \t\r\n", s[off - 1]))
        off--;
    memmove(s, s + start, off - start);
    s[off - start] = '\0';
    return s;
}

void ec2_regions_free(char **regions, size_t n)
{
    if (!regions)
        return;
    for (size_t i = 0; i < n; i++)
        free(regions[i]);
    free(regions);
}

/* Lists every regionInfo/item/regionName of a DescribeRegionsResponse (elements matched by local
 * name, namespaces ignored), without the ones whose optInStatus is "not-opted-in". A document
 * that is not such a response, an item without a valid region name, or no enabled region at all
 * is MalformedResponse: an account always has regions, and an empty list would silently leave
 * it unscanned. */
int ec2_parse_regions(const char *xml, size_t len, char ***regions, size_t *n, struct err *err)
{
    *regions = NULL;
    *n = 0;
    if (!xml || len == 0)
        return err_set(err, ERR_PARSE, "DescribeRegions: empty response body");
    if (len > INT_MAX)
        return err_set(err, ERR_PARSE, "DescribeRegions: response too large");
    xmlDoc *doc = xmldoc_read(xml, len, 0);
    if (!doc)
        return err_set(err, ERR_PARSE, "DescribeRegions: the answer is not well-formed XML");
    int rc = -1;
    char **out = NULL;
    size_t count = 0, cap = 0;
    const xmlNode *root = xmlDocGetRootElement(doc);
    const xmlNode *info = NULL;
    if (doc->intSubset) { /* AWS never sends a DTD; refuse anything that declares entities */
        err_set(err, ERR_PARSE, "DescribeRegions: the answer carries a DTD");
        goto out;
    }
    if (!root || !is_elem(root, "DescribeRegionsResponse")) {
        err_set(err, ERR_PARSE,
                "DescribeRegions: the answer is <%s>, not a "
                "DescribeRegionsResponse",
                root && root->name ? (const char *)root->name : "");
        goto out;
    }
    info = child_elem(root, "regionInfo");
    if (!info) {
        err_set(err, ERR_PARSE, "DescribeRegions: the answer has no regionInfo");
        goto out;
    }
    for (const xmlNode *item = info->children; item; item = item->next) {
        if (!is_elem(item, "item"))
            continue;
        const xmlNode *name_el = child_elem(item, "regionName");
        const xmlNode *opt_el = child_elem(item, "optInStatus");
        const xmlNode *odd = name_el && has_non_text(name_el) ? name_el
                             : opt_el && has_non_text(opt_el) ? opt_el
                                                              : NULL;
        if (odd) {
            err_set(err, ERR_PARSE, "DescribeRegions: item %zu: %s holds elements, expected text",
                    count, (const char *)odd->name);
            goto out;
        }
        char *name = name_el ? elem_text(name_el) : NULL;
        if (!name_el || !name || !endpoint_region_valid(name)) {
            if (name_el && !name)
                err_set(err, ERR_NOMEM, "DescribeRegions: out of memory");
            else
                err_set(err, ERR_PARSE, "DescribeRegions: item %zu has no valid regionName", count);
            free(name);
            goto out;
        }
        if (opt_el) {
            char *opt = elem_text(opt_el);
            int skip = opt && strcmp(opt, "not-opted-in") == 0;
            free(opt);
            if (skip) {
                free(name);
                continue;
            }
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **grown = realloc(out, ncap * sizeof *grown);
            if (!grown) {
                free(name);
                err_set(err, ERR_NOMEM, "DescribeRegions: out of memory");
                goto out;
            }
            out = grown;
            cap = ncap;
        }
        out[count++] = name;
    }
    if (count == 0) {
        err_set(err, ERR_PARSE, "DescribeRegions: the answer lists no enabled region");
        goto out;
    }
    *regions = out;
    *n = count;
    out = NULL;
    count = 0;
    rc = 0;
out:
    ec2_regions_free(out, count);
    xmlFreeDoc(doc);
    return rc;
}

struct ec2_call {
    ec2_regions_fn done;
    void *ud;
};

static void regions_done(void *ud, const struct aws_response *resp)
{
    struct ec2_call call = *(struct ec2_call *)ud;
    free(ud);
    if (err_isset(&resp->err)) {
        call.done(call.ud, NULL, 0, &resp->err);
        return;
    }
    struct err e;
    err_clear(&e);
    e.http_status = resp->status;
    memcpy(e.request_id, resp->err.request_id, sizeof e.request_id);
    char **regions;
    size_t n;
    if (ec2_parse_regions(resp->body, resp->body_len, &regions, &n, &e) < 0) {
        call.done(call.ud, NULL, 0, &e);
        return;
    }
    call.done(call.ud, (const char *const *)regions, n, NULL);
    ec2_regions_free(regions, n);
}

int ec2_describe_regions_submit(struct http_engine *engine, struct aws_credentials *creds,
                                const char *region, const char *pace_key, ec2_regions_fn done,
                                void *ud, struct err *err)
{
    if (!engine || !done)
        return err_set(err, ERR_INVALID, "ec2_describe_regions_submit: no engine or callback");
    struct endpoint ep;
    if (endpoint_resolve("ec2", region, &ep, err) < 0)
        return -1;
    char url[sizeof ep.url + 2];
    snprintf(url, sizeof url, "%s/", ep.url);
    static const struct sigv4_header headers[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
    };
    struct aws_request req;
    memset(&req, 0, sizeof req);
    req.protocol = AWS_PROTO_EC2;
    req.method = "POST";
    req.url = url;
    req.service = "ec2";
    req.region = ep.signing_region;
    req.creds = creds;
    req.headers = headers;
    req.n_headers = 1;
    req.body = describe_regions_body;
    req.body_len = sizeof describe_regions_body - 1;
    req.pace_key = pace_key;
    req.allow_http = ep.is_override;
    struct ec2_call *call = malloc(sizeof *call);
    if (!call)
        return err_set(err, ERR_NOMEM, "DescribeRegions: out of memory");
    call->done = done;
    call->ud = ud;
    if (http_submit(engine, &req, regions_done, call, err) < 0) {
        free(call);
        return -1;
    }
    return 0;
}
