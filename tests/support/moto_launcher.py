"""Starts moto's server with the one fix egressscan's integration tests need.

moto 5.2.1 checks SigV4 of a body-less GET/HEAD/DELETE against a canonical request built from a
form-encoded copy of the query string (or headers) instead of the empty payload, so every
correctly signed EKS ListClusters/DescribeCluster fails with SignatureDoesNotMatch once
authentication is switched on. While the canonical request of such a request is built, the
request's parsed form data is hidden. Everything else is moto unchanged.

Usage: python3 moto_launcher.py -H 127.0.0.1 -p PORT   (HOME/.aws/models holds the AWS models)
"""
import sys

from moto.iam import access_control

_original = access_control.IAMRequestBase._create_aws_request


def _create_aws_request(self):
    if self._method in ("GET", "HEAD", "DELETE") and not self._body:
        saved = self._data
        self._data = {}
        try:
            return _original(self)
        finally:
            self._data = saved
    return _original(self)


access_control.IAMRequestBase._create_aws_request = _create_aws_request

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
