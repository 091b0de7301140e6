resource "aws_dynamodb_table" "readings" {
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "device_id"
  range_key                   = "timestamp"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "device_id"
    type = "S"
  }

  attribute {
    name = "timestamp"
    type = "S"
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  point_in_time_recovery {
    enabled = true
  }

  dynamic "ttl" {
    for_each = var.table_ttl_attribute != "" ? [var.table_ttl_attribute] : []
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.reading_ttl == null || var.reading_ttl == "" || var.table_ttl_attribute == "expires_at"
      error_message = "reading_ttl is set, so table_ttl_attribute must be \"expires_at\": the worker writes each reading's expiry there."
    }
  }
}

# Alarms (one item per vehicle and rule), their transitions and the alert
# ledger: apart from the readings, so scans and exports of readings see
# readings only. The ledger's items expire through TTL on expires_at.
resource "aws_dynamodb_table" "alarms" {
  name                        = local.alarm_table
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "device_id"
  range_key                   = "record"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "device_id"
    type = "S"
  }

  attribute {
    name = "record"
    type = "S"
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  point_in_time_recovery {
    enabled = true
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  tags = local.tags
}
