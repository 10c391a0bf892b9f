/* endpoint.c - resolves where a service is reached, as the AWS SDKs do: AWS_ENDPOINT_URL_<SERVICE>,
 * then AWS_ENDPOINT_URL, then the service's regional (or partition-global) endpoint. Cheap enough
 * to call per request: no allocation, only getenv. */
#include "scanner/endpoint.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int endpoint_region_valid(const char *region)
{
    if (!region)
        return 0;
    size_t n = strlen(region);
    /* It goes into a hostname and into the credential scope: [a-z][a-z0-9-]*[a-z0-9]. */
    if (n < 2 || n >= sizeof(((struct endpoint *)0)->signing_region))
        return 0;
    if (!(region[0] >= 'a' && region[0] <= 'z') || region[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = region[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok || (c == '-' && region[i + 1] == '-'))
            return 0;
    }
    return 1;
}

static int service_name_valid(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return 0;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return 0;
    }
    return 1;
}

static int env_true(const char *name)
{
    const char *v = getenv(name);
    return v && strcasecmp(v, "true") == 0;
}

/* Validates an override URL and copies it without trailing '/' into out. */
static int take_override(const char *var, const char *url, struct endpoint *out, struct err *err)
{
    size_t scheme_len;
    if (strncasecmp(url, "https://", 8) == 0)
        scheme_len = 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        scheme_len = 7;
    else
        return err_set(err, ERR_CONFIG, "%s must start with http:// or https://", var);
    for (const char *p = url; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '@' || c == '\\')
            return err_set(err, ERR_CONFIG,
                           "%s must be scheme://host[:port][/path] without spaces, "
                           "credentials, query or fragment",
                           var);
    }
    const char *host = url + scheme_len;
    size_t host_len = strcspn(host, "/");
    if (host_len == 0 || host[0] == ':')
        return err_set(err, ERR_CONFIG, "%s has no host", var);
    const char *colon = memchr(host, ':', host_len);
    if (colon && host[0] != '[') {
        const char *port = colon + 1;
        size_t port_len = host_len - (size_t)(port - host);
        if (port_len == 0 || port_len > 5 || strspn(port, "0123456789") < port_len ||
            atoi(port) > 65535)
            return err_set(err, ERR_CONFIG, "%s has an invalid port", var);
    }
    size_t len = strlen(url);
    while (len > scheme_len + host_len && url[len - 1] == '/')
        len--;
    if (len >= sizeof out->url)
        return err_set(err, ERR_CONFIG, "%s is too long", var);
    /* scheme lowercased so that callers can test for "http://" */
    for (size_t i = 0; i < len; i++)
        out->url[i] = i < scheme_len ? (char)tolower((unsigned char)url[i]) : url[i];
    out->url[len] = '\0';
    out->is_override = 1;
    return 0;
}

int endpoint_resolve(const char *service, const char *region, struct endpoint *out, struct err *err)
{
    if (!out)
        return err_set(err, ERR_INVALID, "endpoint_resolve: no output");
    out->url[0] = '\0';
    out->signing_region[0] = '\0';
    out->is_override = 0;
    if (!service_name_valid(service))
        return err_set(err, ERR_CONFIG, "invalid service name");
    if (!endpoint_region_valid(region))
        return err_set(err, ERR_CONFIG, "invalid region \"%.40s\"%s", region ? region : "",
                       region && strlen(region) > 40 ? "..." : "");

    const int is_cn = strncmp(region, "cn-", 3) == 0;
    const int is_gov = strncmp(region, "us-gov-", 7) == 0;
    const char *suffix = is_cn ? "amazonaws.com.cn" : "amazonaws.com";
    const int global = strcmp(service, "organizations") == 0;
    const char *global_region = is_cn ? "cn-northwest-1" : is_gov ? "us-gov-west-1" : "us-east-1";

    snprintf(out->signing_region, sizeof out->signing_region, "%s",
             global ? global_region : region);

    if (!env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
        /* AWS_ENDPOINT_URL_<SERVICE ID>: the service id uppercased, spaces and '-' to '_'. */
        char var[96] = "AWS_ENDPOINT_URL_";
        size_t off = strlen(var);
        for (const char *s = service; *s && off < sizeof var - 1; s++)
            var[off++] = (*s == ' ' || *s == '-') ? '_' : (char)toupper((unsigned char)*s);
        var[off] = '\0';
        const char *v = getenv(var);
        if (v && *v)
            return take_override(var, v, out, err);
        v = getenv("AWS_ENDPOINT_URL");
        if (v && *v)
            return take_override("AWS_ENDPOINT_URL", v, out, err);
    }

    if (global)
        snprintf(out->url, sizeof out->url, "https://%s.%s.%s", service, global_region, suffix);
    else
        snprintf(out->url, sizeof out->url, "https://%s.%s.%s", service, region, suffix);
    return 0;
}

int endpoint_check_env(struct err *err)
{
    static const char *const vars[] = {"AWS_ENDPOINT_URL",     "AWS_ENDPOINT_URL_EKS",
                                       "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_ORGANIZATIONS",
                                       "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_SECURITYHUB"};
    if (!env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"))
        for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
            const char *v = getenv(vars[i]);
            struct endpoint scratch;
            if (v && *v && take_override(vars[i], v, &scratch, err) < 0)
                return -1;
        }
    const char *var = "AWS_REGION";
    const char *r = getenv(var);
    if (!r || !*r) {
        var = "AWS_DEFAULT_REGION";
        r = getenv(var);
    }
    if (r && *r && !endpoint_region_valid(r))
        return err_set(err, ERR_CONFIG, "%s \"%.40s\" is not a region name (e.g. eu-west-1)", var,
                       r);
    return 0;
}

const char *endpoint_home_region(void)
{
    const char *r = getenv("AWS_REGION");
    if (!r || !*r)
        r = getenv("AWS_DEFAULT_REGION");
    return r && *r ? r : "us-east-1";
}

const char *endpoint_partition(const char *region)
{
    if (strncmp(region, "cn-", 3) == 0)
        return "aws-cn";
    if (strncmp(region, "us-gov-", 7) == 0)
        return "aws-us-gov";
    if (strncmp(region, "us-isob-", 8) == 0)
        return "aws-iso-b";
    if (strncmp(region, "us-iso-", 7) == 0)
        return "aws-iso";
    return "aws";
}
