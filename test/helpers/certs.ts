// Test certificates made with openssl in a directory the test owns.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const pexec = promisify(execFile);

/** ca, other-ca (signs nothing the server trusts), server (SAN 127.0.0.1), client, stranger: NAME.crt and NAME.key in `d`. */
export async function makeCerts(d: string): Promise<void> {
  const openssl = async (args: string[]): Promise<void> => void await pexec('openssl', args, { cwd: d });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) await openssl(['req', '-x509', ...key, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '1', '-subj', `/CN=xlb test ${ca}`]);
  const leaf = async (name: string, ca: string, ext: string): Promise<void> => {
    await writeFile(join(d, `${name}.ext`), ext);
    await openssl(['req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`]);
  };
  await leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await leaf('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  await leaf('stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n');
}
