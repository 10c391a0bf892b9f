/* version.h - the program version, also sent in the User-Agent. */
#ifndef EGRESSSCAN_VERSION_H
#define EGRESSSCAN_VERSION_H

#define EGRESSSCAN_VERSION "0.1.0"

#endif
