"""The body of scripts/demo: drives the emulator, the fleetwatch binary and
boto3 (installed with moto) to show one file going through the pipeline."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import boto3

BIN, SAMPLE = sys.argv[1], sys.argv[2]
DEADLINE_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what, check):
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"demo: timed out waiting for {what}")


def main():
    moto_port, metrics_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{moto_port}"
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",
        AWS_EC2_METADATA_DISABLED="true",
    )
    moto_bin = os.path.join(os.path.dirname(sys.executable), "moto_server")
    moto = subprocess.Popen([moto_bin, "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        wait("the emulator", lambda: socket.socket().connect_ex(("127.0.0.1", moto_port)) == 0)
        print(f"==> emulator on {endpoint}; fleetwatch bootstrap", file=sys.stderr)
        exports = subprocess.run([BIN, "bootstrap"], env=env, check=True, capture_output=True, text=True).stdout
        print(exports)
        for line in exports.splitlines():
            if line.startswith("export "):
                key, value = line[len("export "):].split("=", 1)
                env[key] = value

        session = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name="us-east-1")
        sqs = session.client("sqs", endpoint_url=endpoint)
        sns = session.client("sns", endpoint_url=endpoint)
        s3 = session.client("s3", endpoint_url=endpoint)
        ddb = session.client("dynamodb", endpoint_url=endpoint)
        # An inbox subscribed to the alert topic, to show what subscribers get.
        inbox = sqs.create_queue(QueueName="demo-alert-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=env["FLEETWATCH_ALERT_TOPIC_ARN"], Protocol="sqs", Endpoint=inbox_arn)

        print("==> fleetwatch worker", file=sys.stderr)
        env["FLEETWATCH_METRICS_ADDR"] = f"127.0.0.1:{metrics_port}"
        worker = subprocess.Popen([BIN, "worker"], env=env)
        key = "incoming/" + os.path.basename(SAMPLE)
        print(f"==> uploading {SAMPLE} to s3://{env['FLEETWATCH_BUCKET']}/{key}", file=sys.stderr)
        started = time.monotonic()
        s3.upload_file(SAMPLE, env["FLEETWATCH_BUCKET"], key)

        def stored():
            items = ddb.scan(TableName=env["FLEETWATCH_TABLE"])["Items"]
            depth = sqs.get_queue_attributes(
                QueueUrl=env["FLEETWATCH_QUEUE_URL"],
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            drained = all(v == "0" for v in depth.values())
            return items if items and drained else None

        items = wait("the readings", stored)
        print(f"\n==> {len(items)} item(s) in DynamoDB table {env['FLEETWATCH_TABLE']} "
              f"({time.monotonic() - started:.1f} s after the upload):")
        for item in sorted(items, key=lambda i: (i["device_id"]["S"], i["timestamp"]["S"])):
            print(json.dumps(item, sort_keys=True))

        messages = wait("the alerts", lambda: sqs.receive_message(
            QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"))
        print(f"\n==> {len(messages)} alert(s) published to {env['FLEETWATCH_ALERT_TOPIC_ARN']}:")
        for m in messages:
            envelope = json.loads(m["Body"])
            print(f"--- {envelope.get('Subject')}\n{envelope['Message']}")

        print("\n==> metrics (excerpt):")
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith(("fleetwatch_records_total", "fleetwatch_alerts_published_total",
                                "fleetwatch_sqs_messages_deleted_total", "fleetwatch_objects_processed_total")):
                print(line)
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        moto.terminate()
        moto.wait(timeout=10)


if __name__ == "__main__":
    main()
