<?php
// Calls mail() the way an application does, with the sendmail_path PHP has
// out of the box. The only argument is a JSON object: to, subject, message,
// headers and, when present, params (mail()'s fifth argument). Prints a
// JSON object: ok (what mail() returned) and sendmail_path.
$c = json_decode($argv[1], true, 512, JSON_THROW_ON_ERROR);
$args = [$c['to'], $c['subject'], $c['message'], $c['headers'] ?? ''];
if (array_key_exists('params', $c)) {
    $args[] = $c['params'];
}
$ok = mail(...$args);
echo json_encode(['ok' => $ok, 'sendmail_path' => ini_get('sendmail_path')]), "\n";
