"""TLS credentials for the NBD tests, made with GnuTLS's certtool and psktool.

x509: a CA, a server certificate for 127.0.0.1/localhost and a client certificate,
laid out as QEMU's tls-creds-x509 expects (ca-cert.pem, server-cert.pem,
server-key.pem, client-cert.pem, client-key.pem). PSK: keys.psk with user "qemu".
"""
import os
import subprocess

CLIENT_DN = "O=strata test,CN=client.example"


def _certtool(args, template_text, cwd):
    template = os.path.join(cwd, "template.cfg")
    with open(template, "w") as f:
        f.write(template_text)
    subprocess.run(["certtool"] + args + ["--template", template], cwd=cwd, check=True,
                   capture_output=True)
    os.remove(template)


def make_x509(directory):
    """Server credentials in directory/server, client ones in directory/client."""
    server = os.path.join(directory, "server")
    client = os.path.join(directory, "client")
    for d in (server, client):
        os.makedirs(d, exist_ok=True)
    work = directory
    subprocess.run(["certtool", "--generate-privkey", "--outfile", "ca-key.pem"], cwd=work,
                   check=True, capture_output=True)
    _certtool(["--generate-self-signed", "--load-privkey", "ca-key.pem", "--outfile",
               "ca-cert.pem"],
              "cn = strata test CA\nca\ncert_signing_key\nexpiration_days = 30\n", work)
    for role, d, extra in (
            ("server", server, "cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\n"
                               "tls_www_server\nencryption_key\nsigning_key\n"),
            ("client", client, "cn = client.example\norganization = strata test\n"
                               "tls_www_client\nencryption_key\nsigning_key\n")):
        subprocess.run(["certtool", "--generate-privkey", "--outfile",
                        os.path.join(d, f"{role}-key.pem")], cwd=work, check=True,
                       capture_output=True)
        _certtool(["--generate-certificate", "--load-privkey", os.path.join(d, f"{role}-key.pem"),
                   "--load-ca-certificate", "ca-cert.pem", "--load-ca-privkey", "ca-key.pem",
                   "--outfile", os.path.join(d, f"{role}-cert.pem")],
                  extra + "expiration_days = 30\n", work)
        with open(os.path.join(work, "ca-cert.pem")) as src, \
                open(os.path.join(d, "ca-cert.pem"), "w") as dst:
            dst.write(src.read())
    return server, client


def make_psk(directory, user="qemu"):
    os.makedirs(directory, exist_ok=True)
    subprocess.run(["psktool", "-u", user, "-p", os.path.join(directory, "keys.psk")],
                   check=True, capture_output=True)
    return directory
