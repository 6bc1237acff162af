// The janitor's own SSM Command document: the GC script (lambda/gc/registry-gc.sh) baked in, and only constrained
// parameters that reach it as SSM_<name> variables. The function may run this document and nothing else.
import { Stack } from 'aws-cdk-lib';
import { CfnDocument } from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';

import {
  CONFIG_PATH_PARAMETER_PATTERN,
  CONTAINER_NAME,
  DEFAULT_CONTAINER_NAME,
  DEFAULT_GC_MODE,
  DEFAULT_GC_TIMEOUT_SECONDS,
  GC_MODES,
  SCRIPT_ACTIONS,
  UPLOAD_URL_PARAMETER_PATTERN,
} from '../lambda/core/contract.ts';
import { readGcScript } from '../lambda/gc/registry-gc.ts';

/** Seconds SSM lets the script run (SendCommand's executionTimeout), as AWS-RunShellScript allows: 1..172800. */
export const EXECUTION_TIMEOUT_PATTERN =
  '^([1-9][0-9]{0,4}|1[0-6][0-9]{4}|17[01][0-9]{3}|172[0-7][0-9]{2}|172800)$';
/** Empty (the script finds the file), or the contract's config path (what the function's config takes). */
export const CONFIG_PATH_PATTERN = CONFIG_PATH_PARAMETER_PATTERN;

const FLAG = ['true', 'false'];

/**
 * The document's content (schema 2.2). Every parameter the script reads is `interpolationType: ENV_VAR` and is
 * never written as a `{{ }}` reference, so no value is ever pasted into the script's text; the patterns are kept
 * anyway, so a bad value fails at SendCommand instead of on the host, and so an agent too old for ENV_VAR (which
 * would see no SSM_ variables) finds the script refusing to run rather than running with pasted text. The one
 * reference is `executionTimeout`, a step input constrained to digits.
 */
export function gcDocumentContent(script: string = readGcScript()): Record<string, unknown> {
  if (script.includes('{{')) {
    // SSM would read it as a parameter reference and paste a value into the script.
    throw new Error('the GC script must not contain "{{": spell Go templates with $lb (see registry-gc.sh)');
  }
  const env = { type: 'String', interpolationType: 'ENV_VAR' } as const;
  return {
    schemaVersion: '2.2',
    description:
      'registry-janitor: runs `registry garbage-collect` in the registry container on this host (read-only ' +
      'stand-in, offline or online), then brings the registry back; or (action list) lists every revision in its ' +
      'storage, read-only, and uploads it to one presigned URL. Created by the RegistryJanitor construct.',
    parameters: {
      containerName: {
        ...env,
        description: 'Name of the registry container.',
        default: DEFAULT_CONTAINER_NAME,
        allowedPattern: CONTAINER_NAME.source,
      },
      configPath: {
        ...env,
        description:
          'Registry configuration inside the container; empty: the file the container was started with, else ' +
          "the version's default.",
        default: '',
        allowedPattern: CONFIG_PATH_PATTERN,
      },
      mode: {
        ...env,
        description:
          'readonly (a stand-in serves pulls), offline (registry stopped) or online (unsafe with pushes).',
        default: DEFAULT_GC_MODE,
        allowedValues: [...GC_MODES],
      },
      dryRun: { ...env, description: 'garbage-collect --dry-run.', default: 'false', allowedValues: FLAG },
      deleteUntagged: {
        ...env,
        description: 'garbage-collect --delete-untagged (refused before distribution v3).',
        default: 'false',
        allowedValues: FLAG,
      },
      action: {
        ...env,
        description:
          'gc: garbage-collect; list: the read-only listing of untagged history, uploaded to uploadUrl.',
        default: 'gc',
        allowedValues: [...SCRIPT_ACTIONS],
      },
      uploadUrl: {
        ...env,
        description:
          'list: the presigned S3 PUT URL (one key, minutes) the listing is uploaded to; empty for gc.',
        default: '',
        allowedPattern: UPLOAD_URL_PARAMETER_PATTERN,
      },
      executionTimeout: {
        type: 'String',
        description: 'Seconds the script may run before the agent stops it.',
        default: String(DEFAULT_GC_TIMEOUT_SECONDS),
        allowedPattern: EXECUTION_TIMEOUT_PATTERN,
      },
    },
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: 'garbageCollect',
        precondition: { StringEquals: ['platformType', 'Linux'] },
        inputs: {
          timeoutSeconds: '{{ executionTimeout }}',
          runCommand: script.replace(/\n$/, '').split('\n'),
        },
      },
    ],
  };
}

/** The document as a CloudFormation resource; CloudFormation names it, so a changed script replaces it. */
export class GcDocument extends Construct {
  /** The document's name, for SendCommand (the function's GC_DOCUMENT_NAME, ENV.documentName in the contract). */
  public readonly documentName: string;
  /** The document's ARN, for ssm:SendCommand. */
  public readonly documentArn: string;

  public constructor(scope: Construct, id: string) {
    super(scope, id);
    const document = new CfnDocument(this, 'Resource', {
      documentType: 'Command',
      documentFormat: 'JSON',
      content: gcDocumentContent(),
    });
    this.documentName = document.ref;
    this.documentArn = Stack.of(this).formatArn({
      service: 'ssm',
      resource: 'document',
      resourceName: document.ref,
    });
  }
}
