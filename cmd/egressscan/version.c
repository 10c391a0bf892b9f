/* version.c - `egressscan version`: the program's and its libraries' versions. */
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <libxml/xmlversion.h>
#include <openssl/crypto.h>
#include <stdio.h>

#include "cmd/egressscan/commands.h"
#include "common/version.h"

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("egressscan %s\n", EGRESSSCAN_VERSION);
    printf("libcurl %s, jansson %s, libpq %d, %s, libxml2 %s\n",
           curl_version_info(CURLVERSION_NOW)->version, jansson_version_str(), PQlibVersion(),
           OpenSSL_version(OPENSSL_VERSION), LIBXML_DOTTED_VERSION);
    return EXIT_OK;
}
