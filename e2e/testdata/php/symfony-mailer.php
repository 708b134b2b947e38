<?php
// Sends one message the way a Symfony application does with the sendmail
// transport: SendmailTransport with the given command ("... -bs" is
// Symfony's default, "... -bs -i" is Laravel's). Debian's
// php-symfony-mailer package provides the library.
//
// usage: php symfony-mailer.php '<sendmail command>' <from> <to> <bcc or -> <subject> <token>
require '/usr/share/php/Symfony/Component/Mailer/autoload.php';

use Symfony\Component\Mailer\Mailer;
use Symfony\Component\Mailer\Transport\SendmailTransport;
use Symfony\Component\Mime\Email;

[$_, $command, $from, $to, $bcc, $subject, $token] = $argv;

$mailer = new Mailer(new SendmailTransport($command));
$email = (new Email())
    ->from($from)
    ->to($to)
    ->subject($subject)
    ->text("Hello from Symfony Mailer.\n.a line that starts with a dot\n" . $token . "\n");
if ($bcc !== '-') {
    $email->bcc($bcc);
}
$mailer->send($email);
echo "sent\n";
