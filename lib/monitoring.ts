// The janitor's monitoring: the alarm topic, alarms on failed runs and on GC and verify failures, the dashboard of
// the run metrics (names and namespace from the function's contract), and the saved Logs Insights query of its runs.
import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IAlarm,
  type IMetric,
  Metric,
  SingleValueWidget,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { type ILogGroup, QueryDefinition, QueryString } from 'aws-cdk-lib/aws-logs';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { METRICS, METRIC_NAMESPACE } from '../lambda/core/contract.ts';

/** What the monitoring watches. */
export interface Watched {
  readonly fn: IFunction;
  readonly failureQueue: IQueue;
  readonly logGroup: ILogGroup;
  /** The `service` dimension of the function's metrics. */
  readonly serviceName: string;
  /** The saved query's name, unique in the account and region. */
  readonly queryName: string;
  /** The workflow's state machine (engine `workflow`): alarms on its executions and a row of its own. */
  readonly stateMachine?: IStateMachine;
}

export interface Monitoring {
  readonly alarmTopic: ITopic;
  readonly alarms: readonly IAlarm[];
  readonly dashboard: Dashboard;
}

/**
 * Create the monitoring in `scope` (the janitor itself, so the resources keep their ids). With `alarmTopic` the
 * alarms notify it; otherwise a new topic, with `alarmEmail` subscribed to it.
 */
export function createMonitoring(
  scope: Construct,
  watched: Watched,
  options: { readonly alarmTopic?: ITopic | undefined; readonly alarmEmail?: string | undefined },
): Monitoring {
  const alarmTopic = options.alarmTopic ?? createTopic(scope, options.alarmEmail);
  const alarms = createAlarms(scope, watched, alarmTopic);
  const dashboard = createDashboard(scope, watched, alarms);
  new QueryDefinition(scope, 'PlanQuery', {
    queryDefinitionName: watched.queryName,
    queryString: new QueryString({
      fields: ['@timestamp', 'function_request_id', 'level', 'message', '@message'],
      filterStatements: ['ispresent(level)'],
      sort: '@timestamp asc',
      limit: 10000,
    }),
    logGroups: [watched.logGroup],
  });
  return { alarmTopic, alarms, dashboard };
}

function createTopic(scope: Construct, email: string | undefined): Topic {
  const topic = new Topic(scope, 'AlarmTopic', { displayName: 'registry-janitor alarms', enforceSSL: true });
  if (email !== undefined) topic.addSubscription(new EmailSubscription(email));
  return topic;
}

function createAlarms(scope: Construct, watched: Watched, alarmTopic: ITopic): IAlarm[] {
  const { fn, serviceName } = watched;
  const runMetric = (metricName: string) =>
    janitorMetric(metricName, serviceName, 'Sum', Duration.minutes(5));
  const specs: { id: string; metric: IMetric; description: string }[] = [
    {
      id: 'FunctionErrors',
      metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      description: 'The registry-janitor run failed (threw or timed out); its log shows why.',
    },
    {
      id: 'GcFailures',
      metric: runMetric(METRICS.gcFailures),
      description:
        'garbage-collect failed or timed out on the registry host; the run log has its output tail.',
    },
    {
      id: 'VerifyFailures',
      metric: runMetric(METRICS.verifyFailures),
      description: 'After the run, a tag the policy keeps no longer resolves: check the registry now.',
    },
    {
      id: 'FailedRuns',
      metric: watched.failureQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      description:
        'A scheduled run failed, expired while throttled, or could not be delivered; the failure queue holds why.',
    },
  ];
  const sm = watched.stateMachine;
  if (sm) {
    const executions = { period: Duration.minutes(5), statistic: 'Sum' };
    specs.push(
      {
        id: 'WorkflowExecutionsFailed',
        metric: sm.metricFailed(executions),
        description:
          'A workflow execution failed: its cause names the failed state and why (Step Functions console, or ' +
          'aws stepfunctions describe-execution); a refused overlap or a plan that was not applied also count.',
      },
      {
        id: 'WorkflowExecutionsTimedOut',
        metric: sm.metricTimedOut(executions),
        description:
          "A workflow execution ran past the state machine's timeout (the GC timeout and 12 hours): a batch or " +
          'garbage-collect is far slower than it should be; its history shows which state was running.',
      },
      {
        id: 'WorkflowExecutionsAborted',
        metric: sm.metricAborted(executions),
        description: 'A workflow execution was stopped by hand (StopExecution) before it finished.',
      },
    );
  }
  const action = new SnsAction(alarmTopic);
  return specs.map(({ id, metric, description }) => {
    const alarm = new Alarm(scope, `${id}Alarm`, {
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    alarm.addAlarmAction(action);
    return alarm;
  });
}

function createDashboard(scope: Construct, watched: Watched, alarms: readonly IAlarm[]): Dashboard {
  const { fn, serviceName } = watched;
  const daily = (metricName: string, statistic = 'Sum') =>
    janitorMetric(metricName, serviceName, statistic, Duration.days(1));
  const dashboard = new Dashboard(scope, 'Dashboard', { defaultInterval: Duration.days(30) });
  dashboard.addWidgets(
    new TextWidget({
      markdown:
        `## registry-janitor\nMetrics per day, namespace \`${METRIC_NAMESPACE}\`, service \`${serviceName}\`. ` +
        'A dry run reports what it would delete in the function log.',
      width: 24,
      height: 2,
    }),
  );
  dashboard.addWidgets(
    new SingleValueWidget({
      title: 'Last 30 days',
      metrics: [
        daily(METRICS.tagsDeleted),
        daily(METRICS.manifestsDeleted),
        daily(METRICS.bytesFreed),
        daily(METRICS.untaggedDeleted),
        daily(METRICS.untaggedBytesFreed),
      ],
      period: Duration.days(30),
      width: 24,
    }),
  );
  dashboard.addWidgets(
    new GraphWidget({
      title: 'Tags and manifests deleted',
      left: [daily(METRICS.tagsDeleted), daily(METRICS.manifestsDeleted)],
    }),
    new GraphWidget({ title: 'Bytes freed', left: [daily(METRICS.bytesFreed)] }),
    new GraphWidget({
      title: 'Duration (seconds)',
      left: [daily(METRICS.runDuration, 'Maximum'), daily(METRICS.gcDuration, 'Maximum')],
    }),
  );
  // Untagged history apart from the tags (published when a storage listing is configured).
  dashboard.addWidgets(
    new GraphWidget({
      title: 'Untagged history: manifests',
      left: [daily(METRICS.untaggedPlanned), daily(METRICS.untaggedDeleted), daily(METRICS.untaggedFailures)],
    }),
    new GraphWidget({
      title: 'Untagged history: bytes freed (estimate) of all bytes freed',
      left: [daily(METRICS.untaggedBytesFreed), daily(METRICS.bytesFreed)],
    }),
    new GraphWidget({
      title: 'Storage listing failed (no untagged delete that run)',
      left: [daily(METRICS.historyListingFailures)],
    }),
  );
  // Two-phase apply (published when a storage listing is configured): untagged tonight, restorable for the undo
  // window, against what the sweep of earlier runs' untagging deleted.
  dashboard.addWidgets(
    new GraphWidget({
      title: 'Two-phase: manifests untagged tonight and swept',
      left: [daily(METRICS.manifestsUntagged), daily(METRICS.manifestsSwept)],
    }),
    new GraphWidget({
      title: 'Two-phase: bytes untagged tonight, reclaimed after the undo window',
      left: [daily(METRICS.bytesPending)],
    }),
  );
  const sm = watched.stateMachine;
  if (sm) {
    const perDay = { period: Duration.days(1), statistic: 'Sum' };
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Workflow executions',
        left: [
          sm.metricStarted(perDay),
          sm.metricSucceeded(perDay),
          sm.metricFailed(perDay),
          sm.metricTimedOut(perDay),
          sm.metricAborted(perDay),
        ],
      }),
      new GraphWidget({
        title: 'Workflow execution time (ms)',
        left: [sm.metricTime({ period: Duration.days(1), statistic: 'Maximum' })],
      }),
      new GraphWidget({
        title: 'Workflow throttled and refused starts',
        left: [sm.metricThrottled(perDay), watched.failureQueue.metricNumberOfMessagesSent(perDay)],
      }),
    );
  }
  dashboard.addWidgets(
    new GraphWidget({
      title: 'Failures',
      left: [daily(METRICS.errors), daily(METRICS.gcFailures), daily(METRICS.verifyFailures)],
    }),
    new GraphWidget({
      title: 'Function',
      left: [
        fn.metricInvocations({ period: Duration.days(1) }),
        fn.metricErrors({ period: Duration.days(1) }),
        fn.metricThrottles({ period: Duration.days(1) }),
      ],
    }),
    new AlarmStatusWidget({ title: 'Alarms', alarms: [...alarms] }),
  );
  return dashboard;
}

function janitorMetric(metricName: string, serviceName: string, statistic: string, period: Duration): Metric {
  return new Metric({
    namespace: METRIC_NAMESPACE,
    metricName,
    dimensionsMap: { service: serviceName },
    statistic,
    period,
  });
}
