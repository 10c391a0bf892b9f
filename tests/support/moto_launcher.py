"""Starts moto's server with the one fix egressscan's integration tests need.

moto 5.2.1 checks SigV4 of a body-less GET/HEAD/DELETE against a canonical request built from a
form-encoded copy of the query string (or headers) instead of the empty payload, so every
correctly signed EKS ListClusters/DescribeCluster fails with SignatureDoesNotMatch once
authentication is switched on. While the canonical request of such a request is built, the
request's parsed form data is hidden.

moto 5.2.1 has no handshakes, so an account removed from the organization could never come back.
InviteAccountToOrganization readmits an account removed earlier at once (as if it accepted the
invitation): back under its old parent, with its old policy attachments. Everything else is moto
unchanged.

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


def _patch_organizations():
    import json

    from moto.organizations import models, responses

    removed = {}  # account id -> (backend, FakeAccount)
    original_remove = models.OrganizationsBackend.remove_account_from_organization

    def remove_account_from_organization(self, **kwargs):
        account = self.get_account_by_id(kwargs["AccountId"])
        original_remove(self, **kwargs)
        removed[account.id] = (self, account)

    def invite_account_to_organization(self):
        target = self._get_param("Target") or {}
        if target.get("Id") not in removed:
            raise models.AccountNotFoundException
        backend, account = removed.pop(target["Id"])
        backend.accounts.append(account)
        for policy in account.attached_policies:
            policy.attachments.append(account)
        models.organizations_backends.master_accounts[account.id] = (backend.account_id, backend.partition)
        return json.dumps({"Handshake": {"Id": "h-" + account.id, "State": "ACCEPTED",
                                         "Action": "INVITE",
                                         "Parties": [{"Id": account.id, "Type": "ACCOUNT"}]}})

    models.OrganizationsBackend.remove_account_from_organization = remove_account_from_organization
    responses.OrganizationsResponse.invite_account_to_organization = invite_account_to_organization


_patch_organizations()

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
