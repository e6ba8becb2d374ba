"""The moto wrapper's contention mode (scripts/moto_server.py, MOTO_CONTENTION_COMMIT_MS) behaves
as DynamoDB does on contention: two transactions overlapping on an item, one is cancelled with
TransactionConflict (the other commits); a plain write to an item a transaction holds gets
TransactionConflictException; once the commit is over, both go through. Without the mode nothing
conflicts. Starts and stops its own moto servers, by PID."""
import os
import pathlib
import sys
import threading
import time
import unittest

import botocore.exceptions

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import otp_aws  # noqa: E402
import peers  # noqa: E402


def start_moto(commit_ms):
    port = peers.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ, MOTO_CONTENTION_COMMIT_MS=str(commit_ms))
    process = peers.start(f"moto (contention {commit_ms} ms)",
                          [sys.executable, str(ROOT / "scripts" / "moto_server.py"), "127.0.0.1", str(port)],
                          peers.url_answers(f"{endpoint}/moto-api/reset", data=b""),
                          ROOT / "target" / f"moto-contention-{commit_ms}.log", env=env)
    return process, endpoint


def charge(table, pk):
    return {"Update": {"TableName": table, "Key": {"pk": {"S": pk}},
                       "UpdateExpression": "ADD sends :one",
                       "ExpressionAttributeValues": {":one": {"N": "1"}}}}


class Contention(unittest.TestCase):
    def run_overlapping(self, commit_ms):
        process, endpoint = start_moto(commit_ms)
        try:
            otp_aws.create_table(endpoint, "contention")
            ddb = otp_aws.client("dynamodb", endpoint)
            outcomes = {}

            def transact(name, items, delay):
                time.sleep(delay)
                try:
                    ddb.transact_write_items(TransactItems=items)
                    outcomes[name] = "committed"
                except botocore.exceptions.ClientError as error:
                    reasons = [r["Code"] for r in error.response.get("CancellationReasons", [])]
                    outcomes[name] = (error.response["Error"]["Code"], reasons)

            first = threading.Thread(target=transact, args=(
                "first", [charge("contention", "budget"), charge("contention", "a")], 0))
            second = threading.Thread(target=transact, args=(
                "second", [charge("contention", "b"), charge("contention", "budget")], 0.1))
            first.start(), second.start()
            first.join(), second.join()
            # A plain write while a transaction on its item commits.
            holder = threading.Thread(target=transact, args=("holder", [charge("contention", "c")], 0))
            holder.start()
            time.sleep(0.1)
            try:
                ddb.update_item(TableName="contention", Key={"pk": {"S": "c"}},
                                UpdateExpression="ADD sends :one",
                                ExpressionAttributeValues={":one": {"N": "1"}})
                plain = "written"
            except botocore.exceptions.ClientError as error:
                plain = error.response["Error"]["Code"]
            holder.join()
            time.sleep(commit_ms / 1000 + 0.1)
            ddb.update_item(TableName="contention", Key={"pk": {"S": "c"}},
                            UpdateExpression="ADD sends :one",
                            ExpressionAttributeValues={":one": {"N": "1"}})
            budget = ddb.get_item(TableName="contention", Key={"pk": {"S": "budget"}})["Item"]
            return outcomes, plain, int(budget["sends"]["N"])
        finally:
            peers.stop(process)

    def test_an_overlapping_transaction_is_cancelled_and_a_plain_write_refused(self):
        outcomes, plain, budget = self.run_overlapping(600)
        self.assertEqual((outcomes["first"], outcomes["holder"]), ("committed", "committed"))
        self.assertEqual(outcomes["second"],
                         ("TransactionCanceledException", ["None", "TransactionConflict"]))
        self.assertEqual(plain, "TransactionConflictException")
        self.assertEqual(budget, 1, "the cancelled transaction wrote nothing")

    def test_without_the_mode_nothing_conflicts(self):
        outcomes, plain, budget = self.run_overlapping(0)
        self.assertEqual(outcomes, {"first": "committed", "second": "committed", "holder": "committed"})
        self.assertEqual(plain, "written")
        self.assertEqual(budget, 2)


if __name__ == "__main__":
    unittest.main()
