<?php
// Certificate revocation for the sample: PHP's openssl extension has no CRL parser, and Swoole
// checks no CRL, so the PEM CRLs of mtls_policy.php's crl_file are read here with a small DER
// walker (RFC 5280 section 5.1). Each CRL must be signed by a CA of the bundle the mTLS port
// trusts (its issuer name and signature are checked at load); a peer certificate is revoked when
// a CRL of its issuer lists its serial number.
declare(strict_types=1);

namespace PodmeshSample;

use RuntimeException;

final class Crl
{
    /** @var array<string, array<string, true>> revoked serials (hex) by issuer name (DER, hex) */
    private array $revoked = [];

    /** OpenSSL digest for the signature algorithms podmesh's CAs (EC or RSA) use. */
    private const SIGNATURE_DIGESTS = [
        '1.2.840.10045.4.3.2' => OPENSSL_ALGO_SHA256,
        '1.2.840.10045.4.3.3' => OPENSSL_ALGO_SHA384,
        '1.2.840.10045.4.3.4' => OPENSSL_ALGO_SHA512,
        '1.2.840.113549.1.1.11' => OPENSSL_ALGO_SHA256,
        '1.2.840.113549.1.1.12' => OPENSSL_ALGO_SHA384,
        '1.2.840.113549.1.1.13' => OPENSSL_ALGO_SHA512,
    ];

    /**
     * @param string $crlPem one or more PEM CRLs (podmesh writes the root's, then the client CA's)
     * @param string $caPem the CA bundle the mTLS port verifies clients against
     * @param string $chainPem certificates that may hold intermediate CAs (the service's own client
     *                         certificate chain: podmesh's client CA signs client certificates and
     *                         its CRL, but is not in ca.crt); only CA certificates that a CA of the
     *                         bundle signed are used
     */
    public function __construct(string $crlPem, string $caPem, string $chainPem = '')
    {
        $cas = [];
        $roots = [];
        foreach (self::pemBlocks($caPem, 'CERTIFICATE') as $der) {
            $roots[] = $cas[bin2hex(self::certSubject($der))] = self::toPem($der, 'CERTIFICATE');
        }
        foreach (self::pemBlocks($chainPem, 'CERTIFICATE') as $der) {
            $pem = self::toPem($der, 'CERTIFICATE');
            $constraints = (string) (openssl_x509_parse($pem)['extensions']['basicConstraints'] ?? '');
            if (! str_contains($constraints, 'CA:TRUE')) {
                continue;
            }
            foreach ($roots as $root) {
                if (openssl_x509_verify($pem, $root) === 1) {
                    $cas[bin2hex(self::certSubject($der))] = $pem;
                    break;
                }
            }
        }
        $crls = self::pemBlocks($crlPem, 'X509 CRL');
        if ($crls === []) {
            throw new RuntimeException('no PEM CRL found');
        }
        foreach ($crls as $der) {
            [$tbs, $algorithm, $signature] = Der::children($der, Der::read($der, 0));
            $fields = Der::children($der, $tbs);
            $i = $fields[0]['tag'] === 0x02 ? 1 : 0; // optional version
            $issuer = bin2hex(Der::raw($der, $fields[$i + 1]));
            $ca = $cas[$issuer] ?? throw new RuntimeException('a CRL is issued by a CA that is not in the trusted bundle');
            $oid = Der::oid(Der::content($der, Der::children($der, $algorithm)[0]));
            $digest = self::SIGNATURE_DIGESTS[$oid] ?? throw new RuntimeException("unsupported CRL signature algorithm {$oid}");
            // BIT STRING: the first content byte counts unused bits (0 for signatures).
            $ok = openssl_verify(Der::raw($der, $tbs), substr(Der::content($der, $signature), 1), $ca, $digest);
            if ($ok !== 1) {
                throw new RuntimeException('a CRL signature does not verify against its issuer');
            }
            $this->revoked[$issuer] ??= [];
            // After thisUpdate and the optional nextUpdate: the optional list of revoked entries.
            foreach (array_slice($fields, $i + 3) as $field) {
                if ($field['tag'] !== 0x30) {
                    continue;
                }
                foreach (Der::children($der, $field) as $entry) {
                    $serial = Der::content($der, Der::children($der, $entry)[0]);
                    $this->revoked[$issuer][self::serialHex($serial)] = true;
                }
            }
        }
    }

    /** True when a CRL of the certificate's issuer lists its serial number. */
    public function isRevoked(string $certPem): bool
    {
        $der = self::pemBlocks($certPem, 'CERTIFICATE')[0] ?? throw new RuntimeException('not a PEM certificate');
        $fields = Der::children($der, Der::children($der, Der::read($der, 0))[0]);
        $i = $fields[0]['tag'] === 0xA0 ? 1 : 0; // optional [0] version
        $serial = self::serialHex(Der::content($der, $fields[$i]));
        $issuer = bin2hex(Der::raw($der, $fields[$i + 2]));
        return isset($this->revoked[$issuer][$serial]);
    }

    /** Number of revoked serials, for the start-up log. */
    public function count(): int
    {
        return array_sum(array_map('count', $this->revoked));
    }

    /** @return list<string> DER of each PEM block with the given label */
    public static function pemBlocks(string $text, string $label): array
    {
        $quoted = preg_quote($label, '/');
        preg_match_all("/-----BEGIN {$quoted}-----([A-Za-z0-9+\\/=\\s]+)-----END {$quoted}-----/", $text, $m);
        return array_map(static fn (string $b64): string => base64_decode(preg_replace('/\s+/', '', $b64), true) ?: throw new RuntimeException("bad base64 in a {$label} block"), $m[1]);
    }

    private static function toPem(string $der, string $label): string
    {
        return "-----BEGIN {$label}-----\n" . chunk_split(base64_encode($der), 64, "\n") . "-----END {$label}-----\n";
    }

    /** The subject Name (DER) of a certificate: tbsCertificate's version?, serial, signature, issuer, validity, subject. */
    private static function certSubject(string $der): string
    {
        $fields = Der::children($der, Der::children($der, Der::read($der, 0))[0]);
        $i = $fields[0]['tag'] === 0xA0 ? 1 : 0;
        return Der::raw($der, $fields[$i + 4]);
    }

    /** An INTEGER's content as lower-case hex without leading zero bytes. */
    private static function serialHex(string $content): string
    {
        $hex = ltrim(bin2hex($content), '0');
        return $hex === '' ? '0' : (strlen($hex) % 2 ? "0{$hex}" : $hex);
    }
}

/** A minimal DER reader: definite lengths only, as DER requires. */
final class Der
{
    /** @return array{tag: int, start: int, header: int, length: int, end: int} */
    public static function read(string $der, int $offset): array
    {
        $size = strlen($der);
        if ($offset + 2 > $size) {
            throw new RuntimeException('DER: truncated header');
        }
        $tag = ord($der[$offset]);
        if (($tag & 0x1F) === 0x1F) {
            throw new RuntimeException('DER: multi-byte tags are not used in X.509 CRLs');
        }
        $first = ord($der[$offset + 1]);
        $header = 2;
        $length = $first;
        if ($first & 0x80) {
            $n = $first & 0x7F;
            if ($n === 0 || $n > 4 || $offset + 2 + $n > $size) {
                throw new RuntimeException('DER: bad length');
            }
            $length = 0;
            for ($k = 0; $k < $n; ++$k) {
                $length = ($length << 8) | ord($der[$offset + 2 + $k]);
            }
            $header += $n;
        }
        $end = $offset + $header + $length;
        if ($end > $size) {
            throw new RuntimeException('DER: element runs past the end');
        }
        return ['tag' => $tag, 'start' => $offset, 'header' => $header, 'length' => $length, 'end' => $end];
    }

    /** @return list<array{tag: int, start: int, header: int, length: int, end: int}> */
    public static function children(string $der, array $node): array
    {
        $children = [];
        for ($at = $node['start'] + $node['header']; $at < $node['end'];) {
            $child = self::read($der, $at);
            if ($child['end'] > $node['end']) {
                throw new RuntimeException('DER: child runs past its parent');
            }
            $children[] = $child;
            $at = $child['end'];
        }
        return $children;
    }

    public static function raw(string $der, array $node): string
    {
        return substr($der, $node['start'], $node['end'] - $node['start']);
    }

    public static function content(string $der, array $node): string
    {
        return substr($der, $node['start'] + $node['header'], $node['length']);
    }

    public static function oid(string $content): string
    {
        $first = ord($content[0]);
        $parts = [intdiv($first, 40), $first % 40];
        $value = 0;
        for ($k = 1, $n = strlen($content); $k < $n; ++$k) {
            $value = ($value << 7) | (ord($content[$k]) & 0x7F);
            if ((ord($content[$k]) & 0x80) === 0) {
                $parts[] = $value;
                $value = 0;
            }
        }
        return implode('.', $parts);
    }
}
